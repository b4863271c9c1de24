"""The indicator catalogue: the operator's scoring configuration, validated when it is loaded.

Every mistake is refused with the file, the key and the problem, before anything is scored, so the
last good configuration stays in force. The content hash goes next to every score.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring.sql import INDICATOR_KEYS, NEGATIVE_RULE_PARAMS
from valuecredit.configfile import ConfigError, content_hash, read_yaml

DEFAULT_CATALOGUE = Path(__file__).resolve().parents[1] / "config" / "catalogue.yaml"
TRANSFORMS = ("bands", "linear", "categories")
DIRECTIONS = ("higher", "lower")


class CatalogueError(ConfigError):
    """The catalogue file is unusable; the message names the file, the key and the problem."""


# 两高一剩 (high pollution, high energy use, overcapacity) as GB/T 4754-2017 divisions: the six
# energy-intensive industries of the National Bureau of Statistics (25 petroleum, coal and other fuel
# processing; 26 chemical raw materials and products; 30 non-metallic mineral products; 31 ferrous and
# 32 non-ferrous metal smelting and rolling; 44 electricity and heat), which hold four of the five
# overcapacity industries of 国发〔2013〕41号 (steel, cement, electrolytic aluminium, flat glass; the fifth,
# shipbuilding, is class 3731 of division 37 and is not expressible by division: docs/DESIGN.md)
HIGH_POLLUTION_OVERCAPACITY_DIVISIONS = ("25", "26", "30", "31", "32", "44")

# The programme's exclusions are its law, not an operator's choice (DOMAIN.md, negative list; the seed
# names 失信被执行人): a catalogue may add rules, never drop, disable or weaken one of these. Each
# kind maps to the test an enabled rule of that kind must pass to count as the mandatory one.
MANDATORY_EXCLUSIONS: dict[str, tuple[str, Callable[[dict[str, Any]], bool]]] = {
    "dishonest_debtor": ("失信被执行人 (the firm, its legal representative or controller)", lambda p: True),
    "tax_violation": ("重大税收违法失信主体", lambda p: True),
    "tax_grade_d": ("tax credit grade D", lambda p: True),
    "serious_illegal": ("严重违法失信名单", lambda p: True),
    "abnormal_operation": ("经营异常名录", lambda p: True),
    "not_operating": ("not in normal operation", lambda p: True),
    "tax_abnormal": ("税务非正常户 (listed by the tax bureau as an abnormal taxpayer)", lambda p: True),
    "overdue_loan": ("a current overdue or non-performing loan", lambda p: True),
    "arrears": ("social-insurance or tax arrears over 3 months (months <= 3)", lambda p: p["months"] <= 3),
    "excluded_industry": ("excluded sectors (industries must include K, real estate; divisions the 两高一剩 ones "
                          f"{', '.join(HIGH_POLLUTION_OVERCAPACITY_DIVISIONS)}; financing_platforms true)",
                          lambda p: "K" in p["industries"] and p["financing_platforms"] is True
                          and set(HIGH_POLLUTION_OVERCAPACITY_DIVISIONS) <= set(p["divisions"])),
    "major_penalty": ("a major safety or environmental penalty within 3 years (years >= 3)", lambda p: p["years"] >= 3),
    "not_sme": ("not an SME (size_classes must include 大型)", lambda p: "大型" in p["size_classes"]),
    "outside_region": ("not registered in Chongqing (district_prefix must start with 50)",
                       lambda p: str(p["district_prefix"]).startswith("50")),
}


@dataclass(frozen=True)
class Transform:
    type: str
    edges: tuple[float, ...] = ()
    points: tuple[float, ...] = ()
    lo: float = 0.0
    hi: float = 0.0
    categories: dict[str, float] = field(default_factory=dict)

    def apply(self, value: Any, direction: str) -> float:
        """Points for one value, the reference the SQL is tested against."""
        if self.type == "categories":
            return self.categories[value]
        if self.type == "linear":
            share = min(max((value - self.lo) / (self.hi - self.lo), 0.0), 1.0)
            return 100.0 * (share if direction == "higher" else 1.0 - share)
        earned = self.points[0]
        for edge, pts in zip(self.edges, self.points[1:]):
            if value >= edge:
                earned = pts
        return earned


@dataclass(frozen=True)
class Indicator:
    id: str
    key: str
    zh: str
    en: str
    dimension: str
    sources: tuple[str, ...]
    unit: str
    direction: str
    weight: float  # relative within its dimension
    transform: Transform
    missing_points: float


@dataclass(frozen=True)
class Dimension:
    key: str
    zh: str
    en: str
    weight: float


@dataclass(frozen=True)
class NegativeRule:
    id: str
    rule: str
    zh: str
    en: str
    params: dict[str, Any]
    enabled: bool = True


@dataclass(frozen=True)
class Catalogue:
    path: str
    version: int
    name: str
    content_hash: str
    dimensions: tuple[Dimension, ...]
    indicators: tuple[Indicator, ...]
    grades: tuple[tuple[str, float], ...]  # (grade, lowest total), best first
    negative_rules: tuple[NegativeRule, ...]
    max_missing_rate: float
    calibration: dict[str, Any]
    raw: dict[str, Any]

    def indicator(self, key: str) -> Indicator:
        return next(i for i in self.indicators if i.key == key)

    def dimension_of(self, ind: Indicator) -> Dimension:
        return next(d for d in self.dimensions if d.key == ind.dimension)

    def total_weights(self) -> dict[str, float]:
        """Each indicator's share of the 0-1000 total per point: 10 x dimension weight x normalised weight."""
        out = {}
        for d in self.dimensions:
            members = [i for i in self.indicators if i.dimension == d.key]
            s = sum(i.weight for i in members)
            for i in members:
                out[i.key] = 10.0 * d.weight * i.weight / s
        return out

    def grade_of(self, total: float) -> str:
        return next(g for g, lowest in self.grades if total >= lowest)


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    path = Path(path or DEFAULT_CATALOGUE)
    return parse_catalogue(read_yaml(path, CatalogueError, "catalogue"), str(path))


def parse_catalogue(doc: Any, path: str = "<catalogue>") -> Catalogue:
    def fail(key: str, problem: str) -> CatalogueError:
        return CatalogueError(f"{path}: {key}: {problem}")

    def need(obj: Any, key: str, where: str, kind: type | tuple[type, ...]) -> Any:
        if not isinstance(obj, dict) or key not in obj:
            raise fail(f"{where}.{key}" if where else key, "missing")
        value = obj[key]
        if kind in (int, float, (int, float)) and isinstance(value, bool):
            raise fail(f"{where}.{key}" if where else key, f"expected a number, found {value!r}")
        if not isinstance(value, kind):
            names = "a number" if kind == (int, float) else kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise fail(f"{where}.{key}" if where else key, f"expected {names}, found {type(value).__name__} {value!r}")
        return value

    def number(obj: Any, key: str, where: str) -> float:
        value = float(need(obj, key, where, (int, float)))
        if not math.isfinite(value):
            raise fail(f"{where}.{key}", f"must be a finite number, found {value}")
        return value

    if not isinstance(doc, dict):
        raise fail("(top level)", "expected a mapping of keys")
    version = need(doc, "version", "", int)
    if version < 1:
        raise fail("version", "must be a positive integer")
    neutral = number(doc, "neutral_points", "")
    max_missing = number(doc, "max_missing_rate", "")
    if not 0 <= max_missing <= 1:
        raise fail("max_missing_rate", f"must lie in [0, 1], found {max_missing}")

    dims_doc = need(doc, "dimensions", "", dict)
    dimensions = []
    for key, d in dims_doc.items():
        w = number(d, "weight", f"dimensions.{key}")
        if w <= 0:
            raise fail(f"dimensions.{key}.weight", f"must be positive, found {w}")
        dimensions.append(Dimension(key, need(d, "zh", f"dimensions.{key}", str), need(d, "en", f"dimensions.{key}", str), w))
    if len(dimensions) != 4:
        raise fail("dimensions", f"the system has 4 dimensions, found {len(dimensions)}")
    total_w = sum(d.weight for d in dimensions)
    if abs(total_w - 1) > 1e-6:
        raise fail("dimensions", f"weights must sum to 1, they sum to {total_w:.6f}")

    grades = []
    for n, g in enumerate(need(doc, "grades", "", list)):
        grades.append((need(g, "grade", f"grades[{n}]", str), number(g, "min", f"grades[{n}]")))
    if not grades or any(a[1] <= b[1] for a, b in zip(grades, grades[1:])):
        raise fail("grades", "list grades best first with strictly decreasing minimum scores")
    if grades[-1][1] != 0:
        raise fail(f"grades[{len(grades) - 1}].min", "the lowest grade must start at 0 so every score has a grade")

    indicators: list[Indicator] = []
    seen: set[str] = set()
    for n, d in enumerate(need(doc, "indicators", "", list)):
        where = f"indicators[{n}]"
        key = need(d, "key", where, str)
        where = f"indicators[{n}] ({key})"
        if key not in INDICATOR_KEYS:
            raise fail(f"{where}.key", f"unknown indicator; the computed ones are {', '.join(INDICATOR_KEYS)}")
        if key in seen:
            raise fail(f"{where}.key", "listed twice")
        seen.add(key)
        dim = need(d, "dimension", where, str)
        if dim not in dims_doc:
            raise fail(f"{where}.dimension", f"{dim!r} is not one of {', '.join(dims_doc)}")
        direction = need(d, "direction", where, str)
        if direction not in DIRECTIONS:
            raise fail(f"{where}.direction", f"must be one of {DIRECTIONS}, found {direction!r}")
        weight = number(d, "weight", where)
        if weight < 0:
            raise fail(f"{where}.weight", f"must not be negative, found {weight}")
        missing = float(d.get("missing_points", neutral))
        if not 0 <= missing <= 100:
            raise fail(f"{where}.missing_points", f"must lie in [0, 100], found {missing}")
        sources = need(d, "source", where, list)
        indicators.append(Indicator(
            id=need(d, "id", where, str), key=key, zh=need(d, "zh", where, str), en=need(d, "en", where, str),
            dimension=dim, sources=tuple(sources), unit=need(d, "unit", where, str), direction=direction,
            weight=weight, transform=_transform(need(d, "transform", where, dict), direction, f"{where}.transform", fail),
            missing_points=missing))
    absent = [k for k in INDICATOR_KEYS if k not in seen]
    if absent:
        raise fail("indicators", f"the system has 19 indicators; missing {', '.join(absent)}")
    for dim in dimensions:
        if sum(i.weight for i in indicators if i.dimension == dim.key) <= 0:
            raise fail(f"dimensions.{dim.key}", "its indicators' weights sum to 0")

    rules: list[NegativeRule] = []
    for n, d in enumerate(need(doc, "negative_list", "", list)):
        where = f"negative_list[{n}]"
        kind = need(d, "rule", where, str)
        if kind not in NEGATIVE_RULE_PARAMS:
            raise fail(f"{where}.rule", f"unknown rule {kind!r}; known: {', '.join(NEGATIVE_RULE_PARAMS)}")
        params = d.get("params", {}) or {}
        expected = NEGATIVE_RULE_PARAMS[kind]
        if set(params) != set(expected):
            raise fail(f"{where}.params", f"rule {kind} takes {sorted(expected) or 'no parameters'}, found {sorted(params)}")
        for p, kind_ in expected.items():
            if not isinstance(params[p], kind_) or (isinstance(params[p], bool) and kind_ is not bool):
                raise fail(f"{where}.params.{p}", f"expected {kind_.__name__}, found {params[p]!r}")
            if kind_ is list and not all(isinstance(v, str) for v in params[p]):
                raise fail(f"{where}.params.{p}", f"expected a list of quoted codes, found {params[p]!r}")
        rules.append(NegativeRule(need(d, "id", where, str), kind, need(d, "zh", where, str), need(d, "en", where, str),
                                  params, bool(d.get("enabled", True))))
    ids = [r.id for r in rules]
    if len(set(ids)) != len(ids):
        raise fail("negative_list", "rule ids must be unique")
    for kind, (what, strong_enough) in MANDATORY_EXCLUSIONS.items():
        if not any(r.enabled and r.rule == kind and strong_enough(r.params) for r in rules):
            present = [n for n, r in enumerate(rules) if r.rule == kind]
            how = (f"rule(s) {', '.join(rules[n].id for n in present)} are disabled or weakened" if present
                   else "no rule of that kind")
            raise fail(f"negative_list[{present[0]}]" if present else "negative_list",
                       f"the mandatory exclusion {kind} ({what}) is missing: {how}; "
                       "the programme's exclusions may be added to, never removed")

    calibration = doc.get("calibration", {}) or {}
    for key in ("indicator_weight_bounds", "dimension_weight_bounds"):
        lo, hi = calibration.get(key, (0.0, 3.0))
        if not 0 <= lo <= 1 <= hi:
            raise fail(f"calibration.{key}", f"need 0 <= low <= 1 <= high (multiples of the expert weight), found [{lo}, {hi}]")

    return Catalogue(path=path, version=version, name=str(doc.get("name", "")), content_hash=content_hash(doc),
                     dimensions=tuple(dimensions), indicators=tuple(indicators), grades=tuple(grades),
                     negative_rules=tuple(rules), max_missing_rate=max_missing, calibration=calibration, raw=doc)


def _transform(t: dict, direction: str, where: str, fail) -> Transform:
    kind = t.get("type")
    if kind not in TRANSFORMS:
        raise fail(f"{where}.type", f"must be one of {TRANSFORMS}, found {kind!r}")
    if kind == "categories":
        pts = t.get("points")
        if not isinstance(pts, dict) or not pts:
            raise fail(f"{where}.points", "categories need a mapping of category to points")
        for cat, p in pts.items():
            if not isinstance(p, (int, float)) or not 0 <= p <= 100:
                raise fail(f"{where}.points.{cat}", f"must be a number in [0, 100], found {p!r}")
        return Transform("categories", categories={str(k): float(v) for k, v in pts.items()})
    if kind == "linear":
        lo, hi = t.get("lo"), t.get("hi")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (lo, hi)) or not lo < hi:
            raise fail(where, f"a linear scale needs numbers lo < hi, found lo={lo!r} hi={hi!r}")
        return Transform("linear", lo=float(lo), hi=float(hi))
    edges, pts = t.get("edges"), t.get("points")
    if not isinstance(edges, list) or not isinstance(pts, list) or not edges:
        raise fail(where, "bands need lists `edges` and `points`")
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in edges + pts):
        raise fail(where, "edges and points must be finite numbers")
    if len(pts) != len(edges) + 1:
        raise fail(f"{where}.points", f"need one more points value than edges ({len(edges) + 1}), found {len(pts)}")
    if any(a >= b for a, b in zip(edges, edges[1:])):
        raise fail(f"{where}.edges", f"must be strictly increasing, found {edges}")
    if any(not 0 <= p <= 100 for p in pts):
        raise fail(f"{where}.points", f"must lie in [0, 100], found {pts}")
    rising = all(a <= b for a, b in zip(pts, pts[1:]))
    falling = all(a >= b for a, b in zip(pts, pts[1:]))
    if (direction == "higher" and not rising) or (direction == "lower" and not falling):
        raise fail(f"{where}.points", f"must {'rise' if direction == 'higher' else 'fall'} with the value "
                                      f"(direction: {direction}), found {pts}")
    return Transform("bands", edges=tuple(float(e) for e in edges), points=tuple(float(p) for p in pts))

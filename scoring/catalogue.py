"""The indicator catalogue: the operator's scoring configuration, validated when it is loaded.

Every mistake is refused with the file, the key, the problem and its line, before anything is scored,
so the last good configuration stays in force. The content hash goes next to every score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, FiniteFloat, StrictBool, StrictStr, ValidationInfo, field_validator, model_validator

from data_contracts.contracts import CONTRACTS
from scoring.sql import INDICATOR_KEYS, INDICATOR_TYPES, NEGATIVE_RULE_PARAMS
from valuecredit.configfile import (
    ConfigError,
    Invalid,
    NonBlank,
    Schema,
    Version,
    checked,
    content_hash,
    number_in,
    one_of,
    validated,
)

DEFAULT_CATALOGUE = Path(__file__).resolve().parents[1] / "config" / "catalogue.yaml"


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


Points = number_in(0, 100)  # what an indicator earns


class _Bands(Schema):
    """value >= edges[i] earns points[i + 1]; below the first edge, points[0]"""

    type: Literal["bands"]
    edges: list[FiniteFloat]
    points: list[Points]

    @field_validator("edges")
    @classmethod
    def _rising(cls, edges: list[float]) -> list[float]:
        if not edges:
            raise ValueError("bands need at least one edge")
        if any(a >= b for a, b in zip(edges, edges[1:])):
            raise ValueError(f"must be strictly increasing, found {edges}")
        return edges

    @field_validator("points")
    @classmethod
    def _one_per_band(cls, points: list[float], info: ValidationInfo) -> list[float]:
        edges = info.data.get("edges")
        if edges is not None and len(points) != len(edges) + 1:
            raise ValueError(f"need one more points value than edges ({len(edges) + 1}), found {len(points)}")
        return points

    def compiled(self) -> Transform:
        return Transform("bands", edges=tuple(self.edges), points=tuple(self.points))


class _Linear(Schema):
    """0 to 100 points from lo to hi (the other way for direction lower), clamped"""

    type: Literal["linear"]
    lo: FiniteFloat
    hi: FiniteFloat

    @model_validator(mode="after")
    def _a_scale(self) -> _Linear:
        if not self.lo < self.hi:
            raise ValueError(f"a linear scale needs lo < hi, found lo={self.lo} hi={self.hi}")
        return self

    def compiled(self) -> Transform:
        return Transform("linear", lo=self.lo, hi=self.hi)


class _Categories(Schema):
    type: Literal["categories"]
    points: dict[StrictStr, Points]

    @field_validator("points")
    @classmethod
    def _some(cls, points: dict[str, float]) -> dict[str, float]:
        if not points:
            raise ValueError("categories need a mapping of category to points")
        return points

    def compiled(self) -> Transform:
        return Transform("categories", categories=dict(self.points))


class _Indicator(Schema):
    id: NonBlank
    key: one_of(INDICATOR_KEYS, "unknown indicator; the computed ones are {known}")
    zh: NonBlank
    en: NonBlank
    dimension: StrictStr
    source: list[Literal[tuple(c.source for c in CONTRACTS)]]  # the departments' feeds it is computed from
    unit: StrictStr
    direction: Literal["higher", "lower"]
    weight: number_in(0)  # relative within its dimension
    transform: Annotated[_Bands | _Linear | _Categories, Field(discriminator="type")]
    missing_points: Points | None = None  # the catalogue's neutral_points when not given

    @model_validator(mode="after")
    def _points_follow_the_direction(self) -> _Indicator:
        # a code (VARCHAR) earns points by category, a number by bands or a linear scale: the other
        # way round the night's SQL would fail on every firm
        coded = INDICATOR_TYPES[self.key] == "VARCHAR"
        if coded != isinstance(self.transform, _Categories):
            raise Invalid(f"{self.key} is {'a code' if coded else 'a number'}: its transform must be "
                          f"{'categories' if coded else 'bands or linear'}, found {self.transform.type}",
                          "transform", "type")
        if isinstance(self.transform, _Bands):
            pts, higher = self.transform.points, self.direction == "higher"
            if not all(a <= b if higher else a >= b for a, b in zip(pts, pts[1:])):
                raise Invalid(f"must {'rise' if higher else 'fall'} with the value (direction: {self.direction}), "
                              f"found {pts}", "transform", "points")
        return self


class _Dimension(Schema):
    zh: StrictStr
    en: StrictStr
    weight: number_in(0, 1, above=True)  # its share of the total


class _Grade(Schema):
    grade: NonBlank
    min: number_in(0, 1000)  # the grade's lowest total score


class _NegativeRule(Schema):
    id: NonBlank
    rule: one_of(NEGATIVE_RULE_PARAMS, "unknown rule {value}; known: {known}")
    zh: NonBlank
    en: NonBlank
    params: dict[StrictStr, Any] | None = None
    enabled: StrictBool = True

    @model_validator(mode="after")
    def _its_params(self) -> _NegativeRule:
        params, expected = self.params or {}, NEGATIVE_RULE_PARAMS[self.rule]
        if set(params) != set(expected):
            raise Invalid(f"rule {self.rule} takes {sorted(expected) or 'no parameters'}, found {sorted(params)}", "params")
        for p, kind in expected.items():
            value = params[p]
            if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
                raise Invalid(f"expected {_KIND_NAMES[kind]}, found {value!r}", "params", p)
            if kind is int and not 0 <= value <= MAX_RULE_SPAN:  # months or years of a window
                raise Invalid(f"must lie in [0, {MAX_RULE_SPAN}], found {value}", "params", p)
            if kind is list and not all(isinstance(v, str) for v in value):
                raise Invalid(f"expected a list of quoted codes, found {value!r}", "params", p)
        return self


_KIND_NAMES = {int: "a whole number", bool: "true or false", str: "text (in quotes)", list: "a list"}
MAX_RULE_SPAN = 100  # a rule's months or years: beyond it, a mistake (and out of the SQL's range)


class _Calibration(Schema):
    """What `valuecredit score calibrate` may do: weights as multiples of the expert ones."""

    indicator_weight_bounds: list[FiniteFloat] = [0.0, 3.0]
    dimension_weight_bounds: list[FiniteFloat] = [0.5, 2.0]
    out_of_time_share: number_in(0, 0.9, above=True) = 0.3  # the latest loans, held out of the fit

    @field_validator("indicator_weight_bounds", "dimension_weight_bounds")
    @classmethod
    def _around_the_expert(cls, bounds: list[float]) -> list[float]:
        if len(bounds) != 2 or not 0 <= bounds[0] <= 1 <= bounds[1]:
            raise ValueError(f"need [low, high] with 0 <= low <= 1 <= high (multiples of the expert weight), found {bounds}")
        return bounds


class _DerivedFrom(Schema):
    version: Version
    content_hash: StrictStr


class _CatalogueFile(Schema):
    """config/catalogue.yaml as the operator writes it (and `score calibrate --adopt` rewrites it)."""

    version: Version
    name: StrictStr = ""
    description: StrictStr = ""
    derived_from: _DerivedFrom | None = None  # written by --adopt: the version the weights were fitted on...
    calibration_note: dict[StrictStr, Any] | None = None  # ...and the fit's samples and AUCs, a record only
    neutral_points: Points
    max_missing_rate: number_in(0, 1)
    dimensions: dict[StrictStr, _Dimension]
    grades: list[_Grade]  # best first
    indicators: list[_Indicator]
    negative_list: list[_NegativeRule]
    calibration: _Calibration = _Calibration()

    @field_validator("dimensions")
    @classmethod
    def _four_summing_to_1(cls, dims: dict[str, _Dimension]) -> dict[str, _Dimension]:
        if len(dims) != 4:
            raise ValueError(f"the system has 4 dimensions, found {len(dims)}")
        if abs((total := sum(d.weight for d in dims.values())) - 1) > 1e-6:
            raise ValueError(f"weights must sum to 1, they sum to {total:.6f}")
        return dims

    @field_validator("grades")
    @classmethod
    def _down_to_0(cls, grades: list[_Grade]) -> list[_Grade]:
        if not grades or any(a.min <= b.min for a, b in zip(grades, grades[1:])):
            raise ValueError("list grades best first with strictly decreasing minimum scores")
        names = [g.grade for g in grades]
        for n, name in enumerate(names):
            if name in names[:n]:
                raise Invalid(f"{name!r} is listed twice", n, "grade")
        if grades[-1].min != 0:
            raise Invalid("the lowest grade must start at 0 so every score has a grade", len(grades) - 1, "min")
        return grades

    @field_validator("indicators")
    @classmethod
    def _the_19_once_each(cls, indicators: list[_Indicator], info: ValidationInfo) -> list[_Indicator]:
        dims, seen = info.data.get("dimensions"), {}  # no dimensions: refused already
        for n, i in enumerate(indicators):
            if i.key in seen:
                raise Invalid(f"listed twice (also indicators[{seen[i.key]}])", n, "key")
            seen[i.key] = n
            if dims is not None and i.dimension not in dims:
                raise Invalid(f"{i.dimension!r} is not one of {', '.join(dims)}", n, "dimension")
        if absent := [k for k in INDICATOR_KEYS if k not in seen]:
            raise ValueError(f"the system has 19 indicators; missing {', '.join(absent)}")
        return indicators

    @field_validator("negative_list")
    @classmethod
    def _the_programmes_exclusions_kept(cls, rules: list[_NegativeRule]) -> list[_NegativeRule]:
        first: dict[str, int] = {}
        for n, r in enumerate(rules):
            if r.id in first:
                raise Invalid(f"rule ids must be unique: {r.id} is also negative_list[{first[r.id]}]", n, "id")
            first[r.id] = n
        for kind, (what, strong_enough) in MANDATORY_EXCLUSIONS.items():
            if not any(r.enabled and r.rule == kind and strong_enough(r.params or {}) for r in rules):
                present = [n for n, r in enumerate(rules) if r.rule == kind]
                how = (f"rule(s) {', '.join(rules[n].id for n in present)} are disabled or weakened" if present
                       else "no rule of that kind")
                raise Invalid(f"the mandatory exclusion {kind} ({what}) is missing: {how}; "
                              "the programme's exclusions may be added to, never removed", *present[:1])
        return rules

    @model_validator(mode="after")
    def _every_dimension_weighted(self) -> _CatalogueFile:
        for key in self.dimensions:
            if sum(i.weight for i in self.indicators if i.dimension == key) <= 0:
                raise Invalid("its indicators' weights sum to 0", "dimensions", key)
        return self


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    path = Path(path or DEFAULT_CATALOGUE)
    f, doc = validated(path, _CatalogueFile, CatalogueError, "catalogue")
    return _catalogue(f, doc, str(path))


def parse_catalogue(doc: Any, path: str = "<catalogue>") -> Catalogue:
    """A catalogue the program made (a fitted one, before it is written), checked as the file is."""
    return _catalogue(checked(doc, _CatalogueFile, CatalogueError, path), doc, path)


def _catalogue(f: _CatalogueFile, doc: Any, path: str) -> Catalogue:
    return Catalogue(
        path=path, version=f.version, name=f.name, content_hash=content_hash(doc),
        dimensions=tuple(Dimension(key, d.zh, d.en, d.weight) for key, d in f.dimensions.items()),
        indicators=tuple(Indicator(
            id=i.id, key=i.key, zh=i.zh, en=i.en, dimension=i.dimension, sources=tuple(i.source), unit=i.unit,
            direction=i.direction, weight=i.weight, transform=i.transform.compiled(),
            missing_points=f.neutral_points if i.missing_points is None else i.missing_points) for i in f.indicators),
        grades=tuple((g.grade, g.min) for g in f.grades),
        negative_rules=tuple(NegativeRule(r.id, r.rule, r.zh, r.en, r.params or {}, r.enabled) for r in f.negative_list),
        max_missing_rate=f.max_missing_rate, calibration=f.calibration.model_dump(), raw=doc)

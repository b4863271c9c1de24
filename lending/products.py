"""The partner banks' product catalogue (`config/products.yaml`): loaded and validated, so that a bad
product stops the run with the product and the field named, before anything is decided."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from valuecredit.configfile import ConfigError, content_hash, read_yaml

DEFAULT_PRODUCTS = Path(__file__).resolve().parents[1] / "config" / "products.yaml"
STATUSES = ("zhuanjingtexin", "high_tech", "tech_sme")  # innovation_status values a product may require
GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "C")  # best first, as in the catalogue
# condition -> (kind, bounds): what a product may require of a firm
CONDITIONS = {
    "min_grade": ("grade", None), "min_score": ("number", (0, 1000)), "max_pd": ("number", (0, 1)),
    "min_years": ("number", (0, 100)), "min_revenue_rmb": ("number", (0, 1e12)), "min_tax_paid_rmb": ("number", (0, 1e11)),
    "industries": ("industries", None), "exclude_industries": ("industries", None), "districts": ("districts", None),
    "required_status": ("statuses", None), "max_amount_rmb": ("number", (10_000, 1e8)), "term_months": ("number", (1, 120)),
}
# product kind -> its terms and their bounds (docs/DESIGN.md, "Product kinds"): what each kind asks of
# a firm beyond the conditions, and the base its limit is derived from
KINDS: dict[str, dict[str, tuple[float, float]]] = {
    "credit": {},  # 信用贷: the revenue and tax bases scaled by the score
    "first_loan": {},  # 首贷: no programme loan from any bank before the date
    "renewal": {"window_days": (1, 365)},  # 续贷: a performing loan of the same bank maturing within the window
    "ip_pledge": {"invention_rmb": (0, 1e8), "utility_rmb": (0, 1e8), "trademark_rmb": (0, 1e8),
                  "cap_rmb": (10_000, 1e8)},  # 知识产权质押: the IP's value by the rule in these terms
    "receivables": {"share": (0.01, 1.0)},  # 确权融资: a share of receivables confirmed by core firms, unpaid
}
WHOLE_TERMS = ("window_days", "invention_rmb", "utility_rmb", "trademark_rmb", "cap_rmb")  # days and RMB: whole numbers
PRODUCT_FIELDS = ("product_id", "bank_id", "name", "kind", "terms", "conditions", "pricing", "limit")


BANK_ID = re.compile(r"[A-Za-z0-9_]{1,32}")  # a bank id names a schema and a folder: nothing else
RESERVED_BANK_IDS = ("programme",)  # the portfolio folder and the ledger statement's total row


class ProductError(ConfigError):
    """The product catalogue is not valid: names the product and the field."""


class UnknownBank(ValueError):
    """A bank id that is not in the product catalogue."""


@dataclass
class ProductCatalogue:
    path: Path
    version: int
    content_hash: str
    programme: dict
    banks: dict[str, str]  # bank_id -> name
    products: list[dict]

    def bank(self, bank_id: str) -> str:
        """`bank_id` when the catalogue has that bank, spelled exactly (`b03` is not B03); refused
        otherwise, with the catalogue's ids. Checked before a bank id goes into any path or query."""
        if bank_id not in self.banks:
            raise UnknownBank(f"bank {bank_id!r} is not in the product catalogue {self.path} "
                              f"(its banks: {', '.join(sorted(self.banks))})")
        return bank_id

    def frame(self) -> pd.DataFrame:
        """One row per product with a column per condition (NULL: does not apply), for SQL."""
        rows = []
        for p in self.products:
            c, price, limit = p["conditions"], p["pricing"], p["limit"]
            bands = sorted(price.get("pd_bands", []))
            kind, terms = p.get("kind", "credit"), p.get("terms") or {}
            rows.append({
                "product_id": p["product_id"], "bank_id": p["bank_id"], "product_name": p["name"], "kind": kind,
                "renewal_window_days": terms.get("window_days"),
                "ip_invention_fen": _fen(terms.get("invention_rmb")), "ip_utility_fen": _fen(terms.get("utility_rmb")),
                "ip_trademark_fen": _fen(terms.get("trademark_rmb")), "ip_cap_fen": _fen(terms.get("cap_rmb")),
                "receivables_share": _f(terms.get("share")),
                "min_grade": c.get("min_grade"), "min_grade_rank": GRADES.index(c["min_grade"]) if "min_grade" in c else None,
                "min_score": _f(c.get("min_score")), "max_pd": _f(c.get("max_pd")), "min_years": _f(c.get("min_years")),
                "min_revenue_rmb": _f(c.get("min_revenue_rmb")), "min_tax_paid_rmb": _f(c.get("min_tax_paid_rmb")),
                "industries": c.get("industries"), "exclude_industries": c.get("exclude_industries"),
                "districts": [str(d) for d in c["districts"]] if "districts" in c else None,
                "required_status": c.get("required_status"),
                "max_amount_fen": int(c["max_amount_rmb"]) * 100 if "max_amount_rmb" in c else None,
                "term_months": c.get("term_months"),
                "base_bp": int(price["base_bp"]), "floor_bp": int(price["floor_bp"]),
                "band_max_pd": [float(b[0]) for b in bands], "band_premium_bp": [int(b[1]) for b in bands],
                "revenue_share": float(limit["revenue_share"]), "tax_multiple": float(limit["tax_multiple"]),
            })
        return pd.DataFrame(rows)


def _f(v) -> float | None:
    return None if v is None else float(v)


def _fen(rmb) -> int | None:
    return None if rmb is None else int(rmb) * 100  # whole RMB, checked at load


def _number(v) -> bool:
    """A finite int or float, not a boolean (YAML's `yes` is True, which Python counts as 1)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v) -> bool:
    """A whole number (an amount in RMB, a count of days): 50000.99 is not silently 50000."""
    return _number(v) and float(v).is_integer()


def load_products(path: Path | str | None = None) -> ProductCatalogue:
    path = Path(path or DEFAULT_PRODUCTS)
    doc = read_yaml(path, ProductError, "product catalogue")
    if not isinstance(doc, dict):
        raise ProductError(f"{path}: expected a mapping with version, programme, banks and products")
    for key in ("version", "programme", "banks", "products"):
        if key not in doc:
            raise ProductError(f"{path}: missing `{key}`")
    if unknown := sorted(str(k) for k in doc if k not in ("version", "programme", "banks", "products")):
        raise ProductError(f"{path}: unknown top-level key {unknown[0]!r} (known: version, programme, banks, products)")
    if not isinstance(doc["version"], int) or isinstance(doc["version"], bool) or doc["version"] < 1:
        raise ProductError(f"{path}: version must be a whole number from 1, got {doc['version']!r}")
    programme = doc["programme"]
    if not isinstance(programme, dict):
        raise ProductError(f"{path}: programme must be a mapping, got {programme!r}")
    for key in ("max_amount_rmb", "max_amount_zhuanjingtexin_rmb", "limit_rounding_rmb"):
        if not _whole(programme.get(key)) or programme[key] <= 0:
            raise ProductError(f"{path}: programme.{key} must be a positive whole number of RMB, got {programme.get(key)!r}")
    for key in ("banks", "products"):
        if not isinstance(doc[key], list) or not doc[key]:
            raise ProductError(f"{path}: {key} must be a non-empty list, got {doc[key]!r}")
    banks = {}
    for b in doc["banks"]:
        if not isinstance(b, dict) or not b.get("bank_id") or not b.get("name"):
            raise ProductError(f"{path}: every bank needs bank_id and name, got {b!r}")
        if not BANK_ID.fullmatch(str(b["bank_id"])):
            raise ProductError(f"{path}: bank_id {b['bank_id']!r} must be 1 to 32 letters, digits or underscores")
        bank_id = str(b["bank_id"])
        if bank_id.lower() in RESERVED_BANK_IDS:
            raise ProductError(f"{path}: bank_id {bank_id!r} is reserved: it names the programme's own report and totals")
        # one schema (bank_<id lower-cased>) and one folder on a case-insensitive file system per bank
        if clash := [other for other in banks if other.lower() == bank_id.lower()]:
            raise ProductError(f"{path}: bank_id {bank_id!r} repeats {clash[0]!r} (bank ids must differ in more "
                               "than letter case: each names a schema and a folder)")
        banks[bank_id] = str(b["name"])
    seen: set[str] = set()
    for p in doc["products"]:
        _check_product(path, p, banks, programme, seen)
    return ProductCatalogue(path, int(doc["version"]), content_hash(doc), programme, banks, doc["products"])


def _check_product(path: Path, p: dict, banks: dict, programme: dict, seen: set[str]) -> None:
    pid = p.get("product_id") if isinstance(p, dict) else None
    if not pid:
        raise ProductError(f"{path}: a product without product_id: {p!r}")
    if not isinstance(pid, str) or pid != pid.strip():
        raise ProductError(f"{path}: product_id {pid!r} must be text without surrounding spaces")

    def bad(field: str, why: str) -> ProductError:
        return ProductError(f"{path}: product {pid}, {field}: {why}")

    if pid in seen:
        raise bad("product_id", "used twice")
    seen.add(pid)
    # a misspelt field (`Kind: renewal`) would otherwise leave the product a plain credit product
    if unknown := [str(k) for k in p if k not in PRODUCT_FIELDS]:
        raise bad(unknown[0], f"unknown field (known: {', '.join(PRODUCT_FIELDS)})")
    for field in ("terms", "conditions", "pricing", "limit"):
        if p.get(field) is not None and not isinstance(p[field], dict):
            raise bad(field, f"must be a mapping, got {p[field]!r}")
    if p.get("bank_id") not in banks:
        raise bad("bank_id", f"{p.get('bank_id')!r} is not one of the banks")
    if not p.get("name") or not isinstance(p["name"], str):
        raise bad("name", f"must be the product's name as text, got {p.get('name')!r}")
    kind = p.get("kind", "credit")
    if not isinstance(kind, str) or kind not in KINDS:
        raise bad("kind", f"{kind!r} is not a product kind (known: {', '.join(KINDS)})")
    terms = p.get("terms") or {}
    for field in terms:
        if field not in KINDS[kind]:
            raise bad(f"terms.{field}", f"not a term of a {kind} product (its terms: {', '.join(KINDS[kind]) or 'none'})")
    for field, (lo, hi) in KINDS[kind].items():
        value = terms.get(field)
        if not _number(value) or not lo <= value <= hi:
            raise bad(f"terms.{field}", f"a {kind} product needs a number from {lo:,} to {hi:,}, got {value!r}")
        if field in WHOLE_TERMS and not _whole(value):
            raise bad(f"terms.{field}", f"must be a whole number ({'days' if field == 'window_days' else 'RMB'}), got {value!r}")
    conditions = p.get("conditions") or {}
    for field, value in conditions.items():
        if field not in CONDITIONS:
            raise bad(f"conditions.{field}", f"unknown condition (known: {', '.join(CONDITIONS)})")
        kind, bounds = CONDITIONS[field]
        if kind == "number" and not (_number(value) and bounds[0] <= value <= bounds[1]):
            raise bad(f"conditions.{field}", f"must be a number from {bounds[0]:,} to {bounds[1]:,}, got {value!r}")
        if field in ("max_amount_rmb", "term_months") and not _whole(value):
            raise bad(f"conditions.{field}", f"must be a whole number, got {value!r}")
        if kind == "grade" and value not in GRADES:
            raise bad(f"conditions.{field}", f"must be one of {', '.join(GRADES)}, got {value!r}")
        if kind == "industries" and not (isinstance(value, list) and value and all(
                isinstance(v, str) and len(v) == 1 and v.isupper() for v in value)):
            raise bad(f"conditions.{field}", f"must be a list of GB/T 4754 section letters, got {value!r}")
        if kind == "districts" and not (isinstance(value, list) and value and all(
                str(v).isdigit() and len(str(v)) == 6 for v in value)):
            raise bad(f"conditions.{field}", f"must be a list of 6-digit district codes, got {value!r}")
        if kind == "statuses" and not (isinstance(value, list) and value and set(value) <= set(STATUSES)):
            raise bad(f"conditions.{field}", f"must be a list from {', '.join(STATUSES)}, got {value!r}")
    cap = programme["max_amount_zhuanjingtexin_rmb"] if conditions.get("required_status") == ["zhuanjingtexin"] \
        else max(programme["max_amount_rmb"], programme["max_amount_zhuanjingtexin_rmb"])
    if "max_amount_rmb" not in conditions:
        raise bad("conditions.max_amount_rmb", "every product needs a maximum amount")
    if conditions["max_amount_rmb"] > cap:
        raise bad("conditions.max_amount_rmb", f"{conditions['max_amount_rmb']:,} is above the programme's cap {cap:,}")
    price = p.get("pricing") or {}
    for field in ("base_bp", "floor_bp"):
        if not isinstance(price.get(field), int) or isinstance(price[field], bool) or not 0 < price[field] < 3000:
            raise bad(f"pricing.{field}", f"must be whole basis points between 1 and 2999, got {price.get(field)!r}")
    bands = price.get("pd_bands")
    if not isinstance(bands, list) or not bands or not all(
            isinstance(b, list) and len(b) == 2 and _number(b[0]) and 0 < b[0] <= 1 and _whole(b[1]) and b[1] >= 0
            for b in bands):
        raise bad("pricing.pd_bands", f"must be a list of [highest PD in (0, 1], premium in whole bp >= 0], got {bands!r}")
    if [b[0] for b in bands] != sorted({b[0] for b in bands}):
        raise bad("pricing.pd_bands", "the bands' highest PDs must rise strictly")
    limit = p.get("limit") or {}
    for field, hi in (("revenue_share", 1.0), ("tax_multiple", 100.0)):
        if not _number(limit.get(field)) or not 0 < limit[field] <= hi:
            raise bad(f"limit.{field}", f"must be a number in (0, {hi}], got {limit.get(field)!r}")

"""The partner banks' product catalogue (`config/products.yaml`): loaded and validated, so that a bad
product stops the run with the field and its line named, before anything is decided."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
from pydantic import AfterValidator, FiniteFloat, StrictStr, ValidationInfo, field_validator, model_validator

from lending.delta import WEEKDAYS
from valuecredit.configfile import (
    ConfigError,
    Invalid,
    NonBlank,
    Schema,
    Version,
    bounded,
    content_hash,
    not_below,
    number_in,
    one_of,
    validated,
)

DEFAULT_PRODUCTS = Path(__file__).resolve().parents[1] / "config" / "products.yaml"
STATUSES = ("zhuanjingtexin", "high_tech", "tech_sme")  # innovation_status values a product may require
GRADES = ("AAA", "AA", "A", "BBB", "BB", "B", "C")  # best first, as in the catalogue
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
    full_table_days: dict[str, frozenset[int]]  # bank_id -> the weekdays (ISO) its folder gets the full table

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


def _sections(value: list[str]) -> list[str]:
    # str.isupper() and isdigit() accept Greek, full-width and other look-alikes that match no firm
    if not value or not all(len(v) == 1 and "A" <= v <= "T" for v in value):
        raise ValueError(f"must be a list of GB/T 4754 section letters A to T, found {value!r}")
    return value


def _districts(value: list[Any]) -> list[Any]:
    # quoted or not: YAML reads 500112 as a number, read back as its digits
    if not value or not all(not isinstance(v, bool) and re.fullmatch(r"[0-9]{6}", str(v)) for v in value):
        raise ValueError(f"must be a list of 6-digit district codes, found {value!r}")
    return value


def _statuses(value: list[str]) -> list[str]:
    if not value or not set(value) <= set(STATUSES):
        raise ValueError(f"must be a list from {', '.join(STATUSES)}, found {value!r}")
    return value


Sections = Annotated[list[StrictStr], AfterValidator(_sections)]


class _Conditions(Schema):
    """What a product may require of a firm. A condition left out does not apply; written as null it is
    refused (the default None is not validated, a null in the file is), as it would read as a value."""

    min_grade: one_of(GRADES, "must be one of {known}, found {value}") = None
    min_score: number_in(0, 1000) = None
    max_pd: number_in(0, 1) = None
    min_years: number_in(0, 100) = None
    min_revenue_rmb: number_in(0, 1e12) = None
    min_tax_paid_rmb: number_in(0, 1e11) = None
    industries: Sections = None
    exclude_industries: Sections = None
    districts: Annotated[list[Any], AfterValidator(_districts)] = None
    required_status: Annotated[list[StrictStr], AfterValidator(_statuses)] = None
    max_amount_rmb: bounded(10_000, 10**8)  # every product has one
    term_months: bounded(1, 120) = None


class _Pricing(Schema):
    floor_bp: bounded(1, 2999)
    base_bp: bounded(1, 2999)
    pd_bands: list[list[FiniteFloat]]  # [highest PD of the band, premium over the base rate in bp], ascending

    _base_not_below_the_floor = field_validator("base_bp")(
        not_below("floor_bp", "the base rate ({value} bp) is below its floor ({floor} bp): no price could go below it"))

    @field_validator("pd_bands")
    @classmethod
    def _rising(cls, bands: list[list[float]]) -> list[list[float]]:
        if not bands:
            raise ValueError("expected at least one band [highest PD, premium in bp]")
        for n, b in enumerate(bands):
            if len(b) != 2 or not 0 < b[0] <= 1 or not b[1].is_integer() or b[1] < 0:
                raise Invalid(f"must be [highest PD in (0, 1], premium in whole bp >= 0], found {b}", n)
        if [b[0] for b in bands] != sorted({b[0] for b in bands}):
            raise ValueError("the bands' highest PDs must rise strictly")
        return bands


class _Limit(Schema):
    revenue_share: number_in(0, 1, above=True)
    tax_multiple: number_in(0, 100, above=True)


class _Product(Schema):
    product_id: StrictStr
    bank_id: StrictStr
    name: NonBlank
    kind: one_of(KINDS, "{value} is not a product kind (known: {known})") = "credit"
    terms: dict[StrictStr, FiniteFloat] | None = None  # the kind's own (KINDS)
    conditions: _Conditions
    pricing: _Pricing
    limit: _Limit

    @field_validator("product_id")
    @classmethod
    def _plain(cls, pid: str) -> str:
        if not pid or pid != pid.strip():
            raise ValueError(f"{pid!r} must be text without surrounding spaces")
        return pid

    @model_validator(mode="after")
    def _the_kinds_terms(self) -> _Product:
        terms, kind = self.terms or {}, self.kind
        for field in terms:
            if field not in KINDS[kind]:
                raise Invalid(f"not a term of a {kind} product (its terms: {', '.join(KINDS[kind]) or 'none'})", "terms", field)
        for field, (lo, hi) in KINDS[kind].items():
            value = terms.get(field)
            if value is None or not lo <= value <= hi:
                raise Invalid(f"a {kind} product needs a number from {lo:,} to {hi:,}, got {value!r}", "terms", field)
            if field in WHOLE_TERMS and not value.is_integer():
                raise Invalid(f"must be a whole number ({'days' if field == 'window_days' else 'RMB'}), got {value!r}",
                              "terms", field)
        return self


class _Programme(Schema):
    max_amount_rmb: bounded(1, 10**12)
    max_amount_zhuanjingtexin_rmb: bounded(1, 10**12)
    limit_rounding_rmb: bounded(1, 10**12)


class _Bank(Schema):
    bank_id: StrictStr
    name: NonBlank
    full_table_on: list[StrictStr] = ["Mon"]  # the weekdays the full table is published (lending.delta)

    @field_validator("full_table_on")
    @classmethod
    def _weekdays(cls, days: list[str]) -> list[str]:
        if not days or any(d not in WEEKDAYS for d in days) or len(set(days)) != len(days):
            raise ValueError(f"must be a list of distinct weekdays from {', '.join(WEEKDAYS)} (all seven: every "
                             f"night), found {days!r}")
        return days

    @field_validator("bank_id")
    @classmethod
    def _a_plain_name(cls, bank_id: str) -> str:
        if not BANK_ID.fullmatch(bank_id):
            raise ValueError(f"{bank_id!r} must be 1 to 32 letters, digits or underscores")
        if bank_id.lower() in RESERVED_BANK_IDS:
            raise ValueError(f"{bank_id!r} is reserved: it names the programme's own report and totals")
        return bank_id


class _ProductsFile(Schema):
    """config/products.yaml as the operator writes it."""

    version: Version
    programme: _Programme
    banks: list[_Bank]
    products: list[_Product]

    @field_validator("banks")
    @classmethod
    def _one_schema_and_folder_each(cls, banks: list[_Bank]) -> list[_Bank]:
        if not banks:
            raise ValueError("expected at least one bank")
        # one schema (bank_<id lower-cased>) and one folder on a case-insensitive file system per bank
        for n, b in enumerate(banks):
            if clash := [other.bank_id for other in banks[:n] if other.bank_id.lower() == b.bank_id.lower()]:
                raise Invalid(f"{b.bank_id!r} repeats {clash[0]!r} (bank ids must differ in more than letter case: "
                              "each names a schema and a folder)", n, "bank_id")
        return banks

    @field_validator("products")
    @classmethod
    def _of_the_banks_within_the_cap(cls, products: list[_Product], info: ValidationInfo) -> list[_Product]:
        if not products:
            raise ValueError("expected at least one product")
        banks, programme = info.data.get("banks"), info.data.get("programme")  # absent: refused already
        first: dict[str, int] = {}
        for n, p in enumerate(products):
            if p.product_id in first:
                raise Invalid(f"{p.product_id!r} used twice (also products[{first[p.product_id]}])", n, "product_id")
            first[p.product_id] = n
            if banks is not None and p.bank_id not in {b.bank_id for b in banks}:
                raise Invalid(f"{p.bank_id!r} is not one of the banks", n, "bank_id")
            if programme is not None:
                cap = (programme.max_amount_zhuanjingtexin_rmb if p.conditions.required_status == ["zhuanjingtexin"]
                       else max(programme.max_amount_rmb, programme.max_amount_zhuanjingtexin_rmb))
                if p.conditions.max_amount_rmb > cap:
                    raise Invalid(f"{p.conditions.max_amount_rmb:,} is above the programme's cap {cap:,}",
                                  n, "conditions", "max_amount_rmb")
        return products


def load_products(path: Path | str | None = None) -> ProductCatalogue:
    path = Path(path or DEFAULT_PRODUCTS)
    f, doc = validated(path, _ProductsFile, ProductError, "product catalogue")
    return ProductCatalogue(path, f.version, content_hash(doc), doc["programme"], {b.bank_id: b.name for b in f.banks},
                            doc["products"],
                            {b.bank_id: frozenset(WEEKDAYS.index(d) + 1 for d in b.full_table_on) for b in f.banks})

"""Decision replay for the regulator: recompute one firm's decisions of a past night from what that
night stored (its scores, indicators, PD inputs, hits and authorisations as delivered by then), the
model version it recorded and the product catalogue in force that day, and show that they match what
was decided, or exactly what differs. `products` replays with another catalogue instead (what a
configuration change would have decided)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from lending.eligibility import CONDITIONS, firm_base_sql, pairs_sql, products_sql
from lending.products import ProductCatalogue
from models.registry import load_model
from valuecredit.scoring.sql import lit


class ReplayError(ValueError):
    """Nothing stored to replay: names the firm and the date."""


@dataclass
class DecisionReplay:
    uscc: str
    as_of: date
    model_version: str | None
    products_version: str
    compared: int  # firm-product decisions compared
    differences: list[dict] = field(default_factory=list)  # {what, product_id, decided, replayed}

    @property
    def identical(self) -> bool:
        return not self.differences


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _unmet(bits: int | None) -> list[str]:
    return [name for i, (name, *_) in enumerate(CONDITIONS) if bits is not None and int(bits) & (1 << i)]


def replay_decision(con: duckdb.DuckDBPyConnection, uscc: str, as_of: date, registry: Path,
                    products: ProductCatalogue | None = None) -> DecisionReplay:
    d = f"DATE {lit(as_of.isoformat())}"
    stored_firm = con.execute("SELECT * FROM decisions.eligibility_firms WHERE as_of = ? AND uscc = ?", [as_of, uscc]).df()
    if stored_firm.empty:
        raise ReplayError(f"no decision stored for {uscc} on {as_of}: not a registered firm, or no nightly run that date")
    diffs: list[dict] = []
    # the PD, from the inputs stored that night and the model version it recorded
    pd_row = con.execute("SELECT pd, model_version FROM scores.pd WHERE as_of = ? AND uscc = ?", [as_of, uscc]).fetchall()
    version = pd_row[0][1] if pd_row else None
    if pd_row:
        inputs = con.execute("SELECT * FROM features.pd_inputs WHERE as_of = ? AND uscc = ?", [as_of, uscc]).df()
        again = float(load_model(registry, version).pd(inputs)[0])
        if again != pd_row[0][0]:  # bit for bit: the same inputs and model give the same float
            diffs.append({"what": "pd", "product_id": None, "decided": pd_row[0][0], "replayed": again})
    # the firm's gates and the values its conditions read, recomputed from the night's tables
    base = f"(SELECT * FROM ({firm_base_sql(as_of)}) WHERE uscc = {lit(uscc)})"
    again_firm = con.execute(f"SELECT * FROM {base}").df()
    for col in ("gates", "grade", "total", "pd", "years_in_operation", "revenue_12m", "tax_paid_12m", "industry",
                "district_code", "innovation_status", "authorised"):
        a, b = stored_firm.iloc[0][col], again_firm.iloc[0][col] if len(again_firm) else None
        a, b = (list(a), list(b)) if col == "gates" else (a, b)
        if not (a == b or (_missing(a) and _missing(b))):
            diffs.append({"what": col, "product_id": None, "decided": a, "replayed": b})
    # every product's decision, with the catalogue in force that day or the one given
    if products is None:
        catalogue = f"(SELECT * FROM decisions.eligibility_products WHERE as_of = {d})"
        label = str(stored_firm.iloc[0]["products_version"])
    else:
        con.register("_replay_products", products.frame())
        catalogue = f"({products_sql('_replay_products', products.programme, d)})"
        label = f"{products.version} ({products.path})"
    try:
        firm = f"(SELECT *, NULL AS products_version, NULL AS products_hash FROM {base})"
        rows = con.execute(f"""
            SELECT coalesce(s.product_id, r.product_id) AS product_id, s.eligible AS s_eligible, r.eligible AS r_eligible,
                   s.unmet AS s_unmet, r.unmet AS r_unmet, s.computed_limit_fen AS s_limit, r.computed_limit_fen AS r_limit,
                   s.rate_bp AS s_rate, r.rate_bp AS r_rate
            FROM (SELECT * FROM decisions.eligibility_pairs WHERE as_of = {d} AND uscc = {lit(uscc)}) s
            FULL JOIN ({pairs_sql(firm, catalogue)}) r USING (product_id) ORDER BY product_id""").fetchall()
    finally:
        if products is not None:
            con.unregister("_replay_products")
    for pid, se, re_, su, ru, sl, rl, sr, rr in rows:
        if se is None or re_ is None:
            diffs.append({"what": "product", "product_id": pid, "decided": "present" if se is not None else "absent",
                          "replayed": "present" if re_ is not None else "absent"})
            continue
        for what, a, b in (("eligible", se, re_), ("unmet", _unmet(su), _unmet(ru)), ("limit_fen", sl, rl), ("rate_bp", sr, rr)):
            if a != b:
                diffs.append({"what": what, "product_id": pid, "decided": a, "replayed": b})
    return DecisionReplay(uscc, as_of, version, label, len(rows), diffs)

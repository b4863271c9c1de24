"""Checks on a date's eligibility: what must hold before any bank sees it."""

from __future__ import annotations

from datetime import date

import duckdb

from lending.products import ProductCatalogue
from valuecredit.checks import CheckOutcome


def check_eligibility(con: duckdb.DuckDBPyConnection, as_of: date, products: ProductCatalogue) -> list[tuple[str, CheckOutcome]]:
    out = []
    rows, pairs, firms = con.execute("""
        SELECT count(*), count(DISTINCT (uscc, product_id)), (SELECT count(*) FROM scores.commercial_value WHERE as_of = $1)
        FROM decisions.eligibility_pairs WHERE as_of = $1""", [as_of]).fetchone()
    expected = firms * len(products.products)
    out.append(("every_firm_every_product", CheckOutcome(
        rows == pairs == expected and rows > 0,
        f"{rows:,} rows, {pairs:,} firm-product pairs; expected {firms:,} firms x {len(products.products)} products",
        {"rows": rows, "expected": expected})))
    cap = int(products.programme["max_amount_rmb"]) * 100
    cap_zjtx = int(products.programme["max_amount_zhuanjingtexin_rmb"]) * 100
    # on the stored pairs and firms, not the view: the shortfalls' text is not needed to count them
    gated, unexplained, over_cap = con.execute(f"""
        SELECT count(*) FILTER (eligible AND (len(gates) > 0 OR NOT authorised)),
               count(*) FILTER (NOT eligible AND len(gates) = 0 AND unmet = 0),
               count(*) FILTER (eligible AND (coalesce(computed_limit_fen, 0) <= 0 OR rate_bp IS NULL
                   OR computed_limit_fen > CASE WHEN f.uscc IN (
                   SELECT uscc FROM features.indicators WHERE as_of = $1 AND innovation_status = 'zhuanjingtexin')
                   THEN {cap_zjtx} ELSE {cap} END))
        FROM decisions.eligibility_pairs e JOIN decisions.eligibility_firms f USING (uscc, as_of)
        WHERE as_of = $1""", [as_of]).fetchone()
    out.append(("decisions_explained_and_capped", CheckOutcome(
        gated == 0 and unexplained == 0 and over_cap == 0,
        f"{gated} eligible despite a hard gate or no authorisation; {unexplained} refusals without a gate or shortfall; "
        f"{over_cap} eligible with no price, no limit or a limit above the programme's cap",
        {"gated_but_eligible": gated, "unexplained_refusals": unexplained, "over_cap": over_cap})))
    return out

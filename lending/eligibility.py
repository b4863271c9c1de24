"""Eligibility of every firm for every product, with the hard gates, the shortfalls (each unmet
condition with the firm's value and the required one), a match degree, the pre-approved limit in fen
and the indicative rate; all in one SQL statement over firms x products."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from lending import replace_date_rows
from lending.products import GRADES, ProductCatalogue
from models.nightly import DDL as PD_DDL
from valuecredit.scoring.sql import PointInTime, lit

# hard gates, in the order they are recorded: the negative list (but the two rules below, which are
# gates of their own), a valid data-use authorisation on the date, an SME, registered in the region
NOT_SME_RULE, OUTSIDE_REGION_RULE = "N11", "N12"
PD_TABLE = next(stmt for stmt in PD_DDL if "scores.pd " in stmt)
GATES = ("negative_list", "no_authorisation", "not_sme", "outside_region")


def firm_base_sql(as_of: date) -> str:
    """Per firm on the date: grade, score, PD, the values conditions read, and the failed gates."""
    d = f"DATE {lit(as_of.isoformat())}"
    pit = PointInTime("", as_of)
    ranks = " ".join(f"WHEN {lit(g)} THEN {i}" for i, g in enumerate(GRADES))
    return f"""
    SELECT c.uscc, c.as_of, c.grade, CASE c.grade {ranks} END AS grade_rank, c.total, p.pd, p.model_version,
           i.years_in_operation, reg.industry, reg.district_code, reg.size_class, i.revenue_12m, i.tax_paid_12m,
           i.innovation_status, c.catalogue_version, c.catalogue_hash, c.snapshot_id, a.uscc IS NOT NULL AS authorised,
           list_filter([
               CASE WHEN len(list_filter(h.rules, lambda x: x NOT IN ('{NOT_SME_RULE}', '{OUTSIDE_REGION_RULE}'))) > 0
                    THEN 'negative_list' END,
               CASE WHEN a.uscc IS NULL THEN 'no_authorisation' END,
               CASE WHEN list_contains(h.rules, '{NOT_SME_RULE}') THEN 'not_sme' END,
               CASE WHEN list_contains(h.rules, '{OUTSIDE_REGION_RULE}') THEN 'outside_region' END
           ], lambda x: x IS NOT NULL) AS gates
    FROM (SELECT * FROM scores.commercial_value WHERE as_of = {d}) c
    JOIN (SELECT * FROM features.indicators WHERE as_of = {d}) i USING (uscc, as_of)
    LEFT JOIN (SELECT * FROM scores.pd WHERE as_of = {d}) p USING (uscc, as_of)
    LEFT JOIN (SELECT uscc, any_value(industry) AS industry, any_value(district_code) AS district_code,
                      any_value(size_class) AS size_class FROM {pit.rows("registry")} GROUP BY uscc) reg USING (uscc)
    LEFT JOIN (SELECT uscc, list(DISTINCT rule_id) AS rules FROM scores.negative_hits WHERE as_of = {d} GROUP BY uscc) h
        USING (uscc)
    LEFT JOIN (SELECT DISTINCT uscc FROM {pit.rows("authorisations")}
               WHERE granted_on <= {d} AND expires_on > {d} AND (revoked_on IS NULL OR revoked_on > {d})) a USING (uscc)"""


def _shortfall(condition: str, unmet: str, value: str, required: str) -> str:
    return (f"CASE WHEN {unmet} THEN struct_pack(condition := '{condition}', value := {value}, "
            f"required := {required}) END")


def eligibility_sql(firms: str, products: str, programme: dict) -> str:
    """One row per firm and product from a firm relation (columns of `firm_base_sql`) and a product
    relation (`ProductCatalogue.frame()`)."""
    cap = int(programme["max_amount_rmb"]) * 100
    cap_zjtx = int(programme["max_amount_zhuanjingtexin_rmb"]) * 100
    unit = int(programme["limit_rounding_rmb"]) * 100
    txt = "coalesce(CAST({} AS VARCHAR), 'no data')"
    # conditions read the columns of firms x products (no clashing names): NULL on the product's side
    # means the condition does not apply; NULL on the firm's side means it is not met, "no data"
    shortfalls = [
        _shortfall("min_grade", "min_grade_rank IS NOT NULL AND coalesce(grade_rank > min_grade_rank, true)",
                   txt.format("grade"), "min_grade || ' or better'"),
        _shortfall("min_score", "min_score IS NOT NULL AND coalesce(total < min_score, true)",
                   txt.format("round(total, 1)"), "'>= ' || min_score"),
        _shortfall("max_pd", "max_pd IS NOT NULL AND coalesce(pd > max_pd, true)",
                   txt.format("round(pd, 4)"), "'<= ' || max_pd"),
        _shortfall("min_years", "min_years IS NOT NULL AND coalesce(years_in_operation < min_years, true)",
                   txt.format("round(years_in_operation, 1)"), "'>= ' || min_years"),
        _shortfall("min_revenue_rmb", "min_revenue_rmb IS NOT NULL AND coalesce(revenue_12m < min_revenue_rmb, true)",
                   txt.format("round(revenue_12m)"), "'>= ' || min_revenue_rmb"),
        _shortfall("min_tax_paid_rmb", "min_tax_paid_rmb IS NOT NULL AND coalesce(tax_paid_12m < min_tax_paid_rmb, true)",
                   txt.format("round(tax_paid_12m)"), "'>= ' || min_tax_paid_rmb"),
        _shortfall("industries", "industries IS NOT NULL AND NOT coalesce(list_contains(industries, industry), false)",
                   txt.format("industry"), "array_to_string(industries, ',')"),
        _shortfall("exclude_industries", "exclude_industries IS NOT NULL AND coalesce(list_contains(exclude_industries, industry), true)",
                   txt.format("industry"), "'not ' || array_to_string(exclude_industries, ',')"),
        _shortfall("districts", "districts IS NOT NULL AND NOT coalesce(list_contains(districts, district_code), false)",
                   txt.format("district_code"), "array_to_string(districts, ',')"),
        _shortfall("required_status", "required_status IS NOT NULL AND NOT coalesce(list_contains(required_status, innovation_status), false)",
                   txt.format("innovation_status"), "array_to_string(required_status, ',')"),
        _shortfall("limit", f"coalesce(limit_fen, 0) < {unit}", txt.format("limit_fen // 100"), f"'>= {unit // 100}'"),
        _shortfall("pricing", "rate_bp IS NULL", txt.format("round(pd, 4)"), "'<= ' || band_max_pd[-1]"),
    ]
    applicable = " + ".join(f"({c} IS NOT NULL)::INT" for c in (
        "min_grade", "min_score", "max_pd", "min_years", "min_revenue_rmb", "min_tax_paid_rmb", "industries",
        "exclude_industries", "districts", "required_status")) + " + 2"  # + the limit and the price
    return f"""
    WITH fp AS (
        SELECT f.*, p.*,
            -- the pre-approved limit: the smaller of the revenue and tax bases, scaled by the score,
            -- capped by the product and the programme, rounded down; integer fen
            CAST(floor(least(
                least(coalesce(f.revenue_12m * p.revenue_share, f.tax_paid_12m * p.tax_multiple),
                      coalesce(f.tax_paid_12m * p.tax_multiple, f.revenue_12m * p.revenue_share))
                    * greatest(0.5, least(1.5, 0.5 + coalesce(f.total, 0) / 1000.0)) * 100,
                p.max_amount_fen,
                CASE WHEN f.innovation_status = 'zhuanjingtexin' THEN {cap_zjtx} ELSE {cap} END) / {unit}) * {unit} AS BIGINT)
                AS limit_fen,
            -- the band the PD falls in (edges inclusive); none when the PD is missing or above the last band
            CASE WHEN f.pd IS NOT NULL
                 THEN p.base_bp + p.band_premium_bp[1 + len(list_filter(p.band_max_pd, lambda x: x < f.pd))] END AS banded_bp,
            CASE WHEN banded_bp IS NOT NULL THEN greatest(p.floor_bp, banded_bp) END AS rate_bp
        FROM {firms} f CROSS JOIN {products} p)
    SELECT uscc, as_of, product_id, bank_id, product_name, len(gates) = 0 AND len(shortfalls) = 0 AS eligible,
           gates, shortfalls, round(1.0 - len(shortfalls) / n_conditions, 4) AS match_degree,
           CASE WHEN len(gates) = 0 AND len(shortfalls) = 0 THEN coalesce(limit_fen, 0) ELSE 0 END AS limit_fen,
           rate_bp, term_months, pd, grade, total, authorised, model_version, catalogue_version, catalogue_hash,
           snapshot_id
    FROM (SELECT *, list_filter([{", ".join(shortfalls)}], lambda x: x IS NOT NULL) AS shortfalls,
                 {applicable} AS n_conditions
          FROM fp)"""


@dataclass
class EligibilitySummary:
    as_of: date
    firms: int
    products: int
    eligible_pairs: int
    eligible_firms: int
    gated: dict[str, int]


def build_eligibility(con: duckdb.DuckDBPyConnection, as_of: date, products: ProductCatalogue) -> EligibilitySummary:
    """Replace the date's rows of decisions.eligibility in one transaction."""
    con.execute("CREATE SCHEMA IF NOT EXISTS decisions")
    con.execute(PD_TABLE)  # before the first PD model there are no PDs: conditions on the PD are then unmet
    con.register("_products", products.frame())
    try:
        select = (f"SELECT *, {products.version} AS products_version, {lit(products.content_hash)} AS products_hash "
                  f"FROM ({eligibility_sql(f'({firm_base_sql(as_of)})', '_products', products.programme)}) "
                  "ORDER BY uscc, product_id")
        replace_date_rows(con, "decisions.eligibility", as_of, select)
    finally:
        con.unregister("_products")
    firms, pairs, eligible_firms = con.execute("""
        SELECT count(DISTINCT uscc), count(*) FILTER (eligible), count(DISTINCT uscc) FILTER (eligible)
        FROM decisions.eligibility WHERE as_of = ?""", [as_of]).fetchone()
    gated = dict(con.execute("""SELECT g, count(DISTINCT uscc) FROM (SELECT uscc, unnest(gates) AS g FROM decisions.eligibility
                                WHERE as_of = ?) GROUP BY g ORDER BY g""", [as_of]).fetchall())
    return EligibilitySummary(as_of, firms, len(products.products), pairs, eligible_firms, gated)


def match(con: duckdb.DuckDBPyConnection, uscc: str, as_of: date):
    """A firm's view: every product, eligible first (by rate, then the larger limit), then the rest by
    how close they come (match degree), each with what it lacks."""
    rows = con.execute("""
        SELECT product_id, bank_id, product_name, eligible, gates, shortfalls, match_degree, limit_fen, rate_bp, term_months
        FROM decisions.eligibility WHERE uscc = ? AND as_of = ?
        ORDER BY eligible DESC, CASE WHEN eligible THEN rate_bp END, limit_fen DESC, match_degree DESC, product_id""",
                       [uscc, as_of]).df()
    if rows.empty:
        known = con.execute("SELECT max(as_of) FROM decisions.eligibility WHERE uscc = ?", [uscc]).fetchone()[0]
        raise ValueError(f"no eligibility for {uscc} on {as_of}" + (f" (latest: {known})" if known else
                                                                      ": not a registered firm, or no run for that date"))
    return rows

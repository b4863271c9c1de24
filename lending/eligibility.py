"""Eligibility of every firm for every product, with the hard gates, the shortfalls (each unmet
condition with the firm's value and the required one), a match degree, the pre-approved limit in fen
and the indicative rate.

Stored narrow, because it is firms x products (70,000,000 rows a night at provincial scale): per
firm the values the conditions read and the gates (`decisions.eligibility_firms`), per product the
catalogue in force (`decisions.eligibility_products`), and per pair only the decision: a bitmask of
the unmet conditions, the limit and the rate (`decisions.eligibility_pairs`). The view
`decisions.eligibility` joins them back into one row per pair with the shortfalls spelled out, so
readers never see the packing and the strings are built only for the rows somebody reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from lending.gate import authorised_firms_sql
from lending.products import GRADES, ProductCatalogue
from scoring.sql import NEGATIVE_RULE_NAMES, PointInTime, within
from valuecredit.ranges import table_kind
from valuecredit.schema import ensure
from valuecredit.sqltext import SQL, lit
from valuecredit.store import replace_date, transaction

# hard gates, in the order they are recorded: the negative list (but the two kinds of rule below, which
# are gates of their own), a valid data-use authorisation on the date, an SME, registered in the region
GATES = ("negative_list", "no_authorisation", "not_sme", "outside_region")
GATE_OF_RULE = {"not_sme": "not_sme", "outside_region": "outside_region"}  # other kinds: negative_list
# a hit as its gate shows it: the rule's id and the short name of its kind ('N01 失信被执行人')
RULE_LABEL = ("rule_id || ' ' || CASE rule " + " ".join(f"WHEN {lit(k)} THEN {lit(v)}" for k, v in NEGATIVE_RULE_NAMES.items())
              + " ELSE rule END")

_TXT = "coalesce(CAST({} AS VARCHAR), 'no data')"
PERFORMING = ("正常", "关注")  # a renewal needs the loan performing: one of these classes and under 90 days past due
# a renewal product (over firms f and products p): the outstanding principal of the firm's performing loans from the product's bank
# that mature within the product's window (NULL: none), which the renewal replaces
RENEWABLE_FEN = ("list_sum(list_transform(list_filter(f.open_loans, lambda x: x.bank_id = p.bank_id "
                 "AND x.maturity_on >= f.as_of AND x.maturity_on <= f.as_of + p.renewal_window_days "
                 f"AND x.classification IN ({lit(PERFORMING[0])}, {lit(PERFORMING[1])}) AND x.dpd < 90), "
                 "lambda x: x.outstanding_fen))")
# (condition, unmet, the firm's value, the requirement), in bit order of `unmet`. The conditions read
# the columns of firms x products (no clashing names; the value reads the firm's columns only, but
# for PAIR_VALUES, the requirement the product's): NULL on the product's side means the condition
# does not apply; NULL on the firm's side means it is not met, for want of data
CONDITIONS = (
    ("min_grade", "min_grade_rank IS NOT NULL AND coalesce(grade_rank > min_grade_rank, true)",
     _TXT.format("grade"), "min_grade || ' or better'"),
    ("min_score", "min_score IS NOT NULL AND coalesce(total < min_score, true)",
     _TXT.format("round(total, 1)"), "'>= ' || min_score"),
    ("max_pd", "max_pd IS NOT NULL AND coalesce(pd > max_pd, true)", _TXT.format("round(pd, 4)"), "'<= ' || max_pd"),
    ("min_years", "min_years IS NOT NULL AND coalesce(years_in_operation < min_years, true)",
     _TXT.format("round(years_in_operation, 1)"), "'>= ' || min_years"),
    ("min_revenue_rmb", "min_revenue_rmb IS NOT NULL AND coalesce(revenue_12m < min_revenue_rmb, true)",
     _TXT.format("round(revenue_12m)"), "'>= ' || min_revenue_rmb"),
    ("min_tax_paid_rmb", "min_tax_paid_rmb IS NOT NULL AND coalesce(tax_paid_12m < min_tax_paid_rmb, true)",
     _TXT.format("round(tax_paid_12m)"), "'>= ' || min_tax_paid_rmb"),
    ("industries", "industries IS NOT NULL AND NOT coalesce(list_contains(industries, industry), false)",
     _TXT.format("industry"), "array_to_string(industries, ',')"),
    ("exclude_industries", "exclude_industries IS NOT NULL AND coalesce(list_contains(exclude_industries, industry), true)",
     _TXT.format("industry"), "'not ' || array_to_string(exclude_industries, ',')"),
    ("districts", "districts IS NOT NULL AND NOT coalesce(list_contains(districts, district_code), false)",
     _TXT.format("district_code"), "array_to_string(districts, ',')"),
    ("required_status", "required_status IS NOT NULL AND NOT coalesce(list_contains(required_status, innovation_status), false)",
     _TXT.format("innovation_status"), "array_to_string(required_status, ',')"),
    ("limit", "coalesce(computed_limit_fen, 0) < limit_rounding_fen", _TXT.format("computed_limit_fen // 100"),
     "'>= ' || limit_rounding_fen // 100"),
    ("pricing", "rate_bp IS NULL", _TXT.format("round(pd, 4)"), "'<= ' || band_max_pd[-1]"),
    # the product kinds' own conditions (appended: the bits above keep their meaning in stored nights)
    ("first_loan", "kind = 'first_loan' AND coalesce(prior_loans, 0) > 0",
     "coalesce(prior_loans, 0) || ' programme loans before the date'", "'no programme loan from any bank before'"),
    ("renewal", "kind = 'renewal' AND renewable_fen IS NULL",
     # the firm's loans outstanding from the product's bank only: another bank's loans, their
     # classification and days past due are that bank's business (a value of the pair: PAIR_VALUES)
     "coalesce(nullif(array_to_string(list_transform(list_filter(open_loans, lambda x: x.bank_id = bank_id), "
     "lambda x: x.bank_id || ' ' || strftime(x.maturity_on, '%Y-%m-%d') || ' ' || x.classification || ' dpd ' || x.dpd), "
     "', '), ''), 'no outstanding loan from ' || bank_id)",
     "'a loan from ' || bank_id || ' maturing by ' || strftime(as_of + renewal_window_days, '%Y-%m-%d') "
     "|| ', 正常 or 关注, dpd < 90'"),
    ("ip_pledge", "kind = 'ip_pledge' AND coalesce(invention_patents, 0) + coalesce(valid_trademarks, 0) = 0",
     "coalesce(invention_patents, 0) || ' invention patents, ' || coalesce(valid_trademarks, 0) || ' trademarks'",
     "'>= 1 valid invention patent or registered trademark'"),
    ("receivables", "kind = 'receivables' AND coalesce(receivables_fen, 0) = 0",
     _TXT.format("coalesce(receivables_fen, 0) // 100"), "'> 0 (confirmed by a core firm, unpaid, not yet due)'"),
)
_OPTIONAL = [name for name, *_ in CONDITIONS[:-6]]  # the limit and the price always apply; a kind's one condition
KIND_CONDITIONS = ("first_loan", "renewal", "ip_pledge", "receivables")
# the conditions whose value reads the product too (its limit; the renewal, the loans of its bank): the
# others' values read the firm's columns only, and publication spells them once per firm
PAIR_VALUES = ("limit", "renewal")
assert [name for name, *_ in CONDITIONS[-6:]] == ["limit", "pricing", *KIND_CONDITIONS] and len(CONDITIONS) <= 16


def firm_base_sql(as_of: date) -> str:
    """Per firm on the date: grade, score, PD, the values conditions read, and the failed gates."""
    d = f"DATE {lit(as_of.isoformat())}"
    pit = PointInTime("", as_of)
    ranks = " ".join(f"WHEN {lit(g)} THEN {i}" for i, g in enumerate(GRADES))
    return f"""
    SELECT c.uscc, c.as_of, c.grade, CASE c.grade {ranks} END AS grade_rank, c.total, p.pd, p.model_version,
           i.years_in_operation, reg.industry, reg.district_code, reg.size_class, i.revenue_12m, i.tax_paid_12m,
           i.innovation_status, c.catalogue_version, c.catalogue_hash, c.snapshot_id, a.uscc IS NOT NULL AS authorised,
           coalesce(ln.prior_loans, 0) AS prior_loans, coalesce(ln.open_loans, []) AS open_loans,
           coalesce(ln.loans_outstanding_fen, 0) AS loans_outstanding_fen, coalesce(ip.invention_patents, 0) AS invention_patents,
           coalesce(ip.utility_models, 0) AS utility_models, coalesce(tm.valid_trademarks, 0) AS valid_trademarks,
           coalesce(rc.receivables_fen, 0) AS receivables_fen,
           list_filter([
               CASE WHEN len(h.negative_list) > 0 THEN 'negative_list' END,
               CASE WHEN a.uscc IS NULL THEN 'no_authorisation' END,
               CASE WHEN len(h.not_sme) > 0 THEN 'not_sme' END,
               CASE WHEN len(h.outside_region) > 0 THEN 'outside_region' END
           ], lambda x: x IS NOT NULL) AS gates,
           coalesce(h.rules, []) AS gate_rules,
           -- the gates as people read them, each with the rules that closed it: 'negative_list: N01 失信被执行人'
           concat_ws('; ',
               'negative_list: ' || array_to_string(h.negative_list, ', '),
               CASE WHEN a.uscc IS NULL THEN 'no_authorisation' END,
               'not_sme: ' || array_to_string(h.not_sme, ', '),
               'outside_region: ' || array_to_string(h.outside_region, ', ')) AS gate_reasons
    FROM (SELECT * FROM scores.commercial_value WHERE as_of = {d}) c
    JOIN (SELECT * FROM features.indicators WHERE as_of = {d}) i USING (uscc, as_of)
    LEFT JOIN (SELECT * FROM scores.pd WHERE as_of = {d}) p USING (uscc, as_of)
    LEFT JOIN (SELECT uscc, any_value(industry) AS industry, any_value(district_code) AS district_code,
                      any_value(size_class) AS size_class FROM {pit.rows("registry")} GROUP BY uscc) reg USING (uscc)
    LEFT JOIN ({gate_rules_sql(d)}) h USING (uscc)
    LEFT JOIN ({authorised_firms_sql(as_of)}) a USING (uscc)
    LEFT JOIN ({loan_book_sql(pit)}) ln USING (uscc)
    LEFT JOIN (SELECT uscc, count(*) FILTER (patent_type = 'invention') AS invention_patents,
                      count(*) FILTER (patent_type = 'utility') AS utility_models
               FROM {pit.rows("patents")} WHERE status = 'valid' AND {within("patents")} AND {within("patents", 1)}
               GROUP BY uscc) ip USING (uscc)
    LEFT JOIN (SELECT uscc, count(*) AS valid_trademarks FROM {pit.rows("trademarks")} WHERE {within("trademarks")}
               GROUP BY uscc) tm USING (uscc)
    LEFT JOIN (SELECT uscc, sum(amount_fen) AS receivables_fen FROM {pit.rows("receivables")}
               WHERE {RECEIVABLE_OPEN} GROUP BY uscc) rc USING (uscc)"""


def gate_rules_sql(d: SQL) -> SQL:
    """Per firm with a hit on the date: the rules that fired (ids, sorted) and, per gate, their labels
    (NULL where none closed that gate)."""
    per_gate = {g: f"rule {'=' if g != 'negative_list' else 'NOT IN'} " + (
        f"({', '.join(lit(k) for k in GATE_OF_RULE)})" if g == "negative_list" else lit(g))
        for g in ("negative_list", "not_sme", "outside_region")}
    lists = ", ".join(f"nullif(list_sort(list_distinct(list(label) FILTER ({cond}))), []) AS {g}" for g, cond in per_gate.items())
    return f"""
    SELECT uscc, list_sort(list_distinct(list(rule_id))) AS rules, {lists}
    FROM (SELECT uscc, rule_id, rule, {RULE_LABEL} AS label FROM scores.negative_hits WHERE as_of = {d})
    GROUP BY uscc"""


# a receivable a bank finances: confirmed by the core firm on or before the date, unpaid and not yet due
RECEIVABLE_OPEN = "confirmed_on <= as_of AND (paid_on IS NULL OR paid_on > as_of) AND due_on > as_of"


def loan_book_sql(pit: PointInTime) -> SQL:
    """Per firm, from the loan book as known on the date: the loans disbursed before it (any bank),
    the loans still outstanding (each with bank, maturity, outstanding principal and its latest
    classification and days past due; a loan without a status yet is whole and current), nearest
    maturity first, and their total outstanding principal."""
    return f"""
    SELECT uscc, count(*) FILTER (disbursed_on < as_of) AS prior_loans,
           list(struct_pack(maturity_on := maturity_on, bank_id := bank_id, outstanding_fen := outstanding_fen,
                            classification := classification, dpd := dpd) ORDER BY maturity_on, loan_id)
               FILTER (outstanding_fen > 0) AS open_loans,
           sum(outstanding_fen) AS loans_outstanding_fen
    FROM (SELECT l.uscc, l.as_of, l.loan_id, l.bank_id, l.disbursed_on, l.maturity_on,
                 coalesce(s.outstanding_fen, l.amount_fen) AS outstanding_fen,
                 coalesce(s.classification, '正常') AS classification, coalesce(s.dpd, 0) AS dpd
          FROM {pit.rows("loans")} l
          LEFT JOIN (SELECT loan_id, outstanding_fen, classification, dpd FROM {pit.rows("loan_status")}
                     QUALIFY row_number() OVER (PARTITION BY loan_id ORDER BY period DESC) = 1) s USING (loan_id)
          WHERE l.disbursed_on <= l.as_of)
    GROUP BY uscc"""


def products_sql(products: SQL, programme: dict, as_of: SQL) -> SQL:
    """The product relation (`ProductCatalogue.frame()`) with the date, the programme's caps and the
    number of conditions that apply to each product (for the match degree)."""
    # the optional conditions set, the limit and the price, and the kind's own condition
    applicable = " + ".join(f"({c} IS NOT NULL)::INT" for c in _OPTIONAL) + " + 2 + (kind <> 'credit')::INT"
    return f"""
    SELECT {as_of} AS as_of, * REPLACE (CAST(renewal_window_days AS INTEGER) AS renewal_window_days,
               CAST(ip_invention_fen AS BIGINT) AS ip_invention_fen, CAST(ip_utility_fen AS BIGINT) AS ip_utility_fen,
               CAST(ip_trademark_fen AS BIGINT) AS ip_trademark_fen, CAST(ip_cap_fen AS BIGINT) AS ip_cap_fen),
           {int(programme["max_amount_rmb"]) * 100} AS programme_cap_fen,
           {int(programme["max_amount_zhuanjingtexin_rmb"]) * 100} AS programme_cap_zhuanjingtexin_fen,
           {int(programme["limit_rounding_rmb"]) * 100} AS limit_rounding_fen, {applicable} AS n_conditions
    FROM {products}"""


def pairs_sql(firms: SQL, products: SQL) -> SQL:
    """The decision for every firm and product: which conditions are unmet (bit i: CONDITIONS[i]),
    the limit before gating and the rate. `firms`: columns of `firm_base_sql`; `products`: of `products_sql`."""
    unmet = " | ".join(f"CASE WHEN {c} THEN {1 << i} ELSE 0 END" for i, (_, c, _, _) in enumerate(CONDITIONS))
    return f"""
    SELECT uscc, as_of, product_id, CAST({unmet} AS USMALLINT) AS unmet, len(gates) = 0 AND unmet = 0 AS eligible,
           computed_limit_fen, CAST(rate_bp AS INTEGER) AS rate_bp
    FROM (SELECT f.*, p.* EXCLUDE (as_of),
              -- the limit's base by the product's kind (docs/DESIGN.md, "Product kinds"), in fen; none
              -- (NULL) where the kind's own condition fails, which is the shortfall then, not the limit
              CASE p.kind
                  WHEN 'ip_pledge' THEN nullif(least(p.ip_cap_fen, f.invention_patents * p.ip_invention_fen
                      + f.utility_models * p.ip_utility_fen + f.valid_trademarks * p.ip_trademark_fen), 0)
                  -- the share as an exact decimal: 0.29 x 1,000,000 RMB is 290,000, where doubles give 289,999.99...
                  WHEN 'receivables' THEN nullif(f.receivables_fen * CAST(p.receivables_share AS DECIMAL(9, 6)), 0)
                  -- the smaller of the revenue and tax bases, scaled by the score; none without either
                  ELSE coalesce(least(coalesce(f.revenue_12m * p.revenue_share, f.tax_paid_12m * p.tax_multiple),
                                      coalesce(f.tax_paid_12m * p.tax_multiple, f.revenue_12m * p.revenue_share))
                                * greatest(0.5, least(1.5, 0.5 + coalesce(f.total, 0) / 1000.0)) * 100, 0)
              END AS base_fen,
              CASE WHEN p.kind = 'renewal' THEN {RENEWABLE_FEN} END AS renewable_fen,
              -- the programme's cap is on the firm's total across banks and kinds: what it already owes
              -- counts against it, but for the loans a renewal replaces
              CASE WHEN f.innovation_status = 'zhuanjingtexin' THEN p.programme_cap_zhuanjingtexin_fen
                   ELSE p.programme_cap_fen END - f.loans_outstanding_fen + coalesce(renewable_fen, 0) AS headroom_fen,
              -- the pre-approved limit: the base, no more than the loans renewed (a renewal), capped by
              -- the product and the firm's headroom, rounded down; integer fen
              CAST(floor(greatest(0, least(base_fen, CASE WHEN p.kind = 'renewal' THEN renewable_fen END,
                                           p.max_amount_fen, headroom_fen)) / p.limit_rounding_fen)
                   * p.limit_rounding_fen AS BIGINT) AS computed_limit_fen,
              -- the band the PD falls in (edges inclusive); none when the PD is missing or above the last band
              CASE WHEN f.pd IS NOT NULL
                   THEN p.base_bp + p.band_premium_bp[1 + len(list_filter(p.band_max_pd, lambda x: x < f.pd))] END
                  AS banded_bp,
              CASE WHEN banded_bp IS NOT NULL THEN greatest(p.floor_bp, banded_bp) END AS rate_bp
          FROM {firms} f CROSS JOIN {products} p)"""


# the share of a product's conditions the firm meets; none behind a hard gate, which no condition can open
MATCH_DEGREE = "CASE WHEN len({gates}) > 0 THEN 0.0::DOUBLE ELSE round(1.0 - bit_count({unmet}) / {n}, 4) END"


def detail_sql(pairs: SQL, firms: SQL, products: SQL) -> SQL:
    """One row per firm and product with the gates and the shortfalls spelled out."""
    spelled = ", ".join(f"CASE WHEN unmet & {1 << i} <> 0 THEN struct_pack(condition := '{name}', value := {value}, "
                        f"required := {required}) END" for i, (name, _, value, required) in enumerate(CONDITIONS))
    return f"""
    SELECT uscc, as_of, product_id, bank_id, product_name, eligible, gates, gate_rules, gate_reasons,
           list_filter([{spelled}], lambda x: x IS NOT NULL) AS shortfalls,
           {MATCH_DEGREE.format(unmet="unmet", n="n_conditions", gates="gates")} AS match_degree,
           CASE WHEN eligible THEN coalesce(computed_limit_fen, 0) ELSE 0 END AS limit_fen,
           rate_bp, term_months, pd, grade, total, authorised, model_version, catalogue_version, catalogue_hash,
           snapshot_id, products_version, products_hash
    FROM {pairs} JOIN {firms} USING (uscc, as_of) JOIN {products} USING (as_of, product_id)"""


def eligibility_sql(firms: SQL, products: SQL, programme: dict, products_version: int = 0, products_hash: str = "") -> SQL:
    """Pairs and detail in one statement, for a firm and a product relation (as the nightly run
    stores them, without storing them)."""
    p = f"({products_sql(products, programme, 'NULL')})"
    f = f"(SELECT *, {int(products_version)} AS products_version, {lit(products_hash)} AS products_hash FROM {firms})"
    return detail_sql(f"({pairs_sql(f, p)})", f, f"(SELECT * EXCLUDE (as_of), f.as_of FROM {p}, (SELECT DISTINCT as_of FROM {firms}) f)")


# the view readers use; the three tables behind it are created from their first night's SELECTs
VIEW = ("CREATE OR REPLACE VIEW decisions.eligibility AS " +
        detail_sql("decisions.eligibility_pairs", "decisions.eligibility_firms", "decisions.eligibility_products"))


def eligibility_of_sql(as_of: date, firms: SQL) -> SQL:
    """The view's rows for some firms on a date (`firms`: a relation with a `uscc` column). The
    pairs are cut to those firms before the joins, which the optimiser does not do through the view
    (28 s instead of 0.3 s for 500 firms among 70,000,000 pairs)."""
    d = f"DATE {lit(as_of.isoformat())}"
    mine = f"as_of = {d} AND uscc IN (SELECT uscc FROM {firms})"
    return detail_sql(f"(SELECT * FROM decisions.eligibility_pairs WHERE {mine})",
                      f"(SELECT * FROM decisions.eligibility_firms WHERE {mine})",
                      f"(SELECT * FROM decisions.eligibility_products WHERE as_of = {d})")


@dataclass
class EligibilitySummary:
    as_of: date
    firms: int
    products: int
    eligible_pairs: int
    eligible_firms: int
    gated: dict[str, int]


def build_eligibility(con: duckdb.DuckDBPyConnection, as_of: date, products: ProductCatalogue) -> EligibilitySummary:
    """Replace the date's eligibility (firms, products and pairs) in one transaction."""
    con.execute("CREATE SCHEMA IF NOT EXISTS decisions")
    ensure(con, "scores.pd")  # before the first PD model there are no PDs: conditions on the PD are then unmet
    _retire_wide_table(con)
    d = f"DATE {lit(as_of.isoformat())}"
    con.register("_products", products.frame())
    selects = {
        "decisions.eligibility_firms": f"SELECT *, {int(products.version)} AS products_version, "
                                       f"{lit(products.content_hash)} AS products_hash FROM ({firm_base_sql(as_of)})",
        "decisions.eligibility_products": products_sql("_products", products.programme, d),
        "decisions.eligibility_pairs": pairs_sql(
            f"(SELECT * FROM decisions.eligibility_firms WHERE as_of = {d})",
            f"(SELECT * FROM decisions.eligibility_products WHERE as_of = {d})"),
    }
    try:
        with transaction(con):
            for table, select in selects.items():  # in order: the pairs read the firms and products just written
                replace_date(con, table, as_of, select, create=True)
            con.execute(VIEW)
    finally:
        con.unregister("_products")
    pairs, eligible_firms = con.execute("""
        SELECT count(*) FILTER (eligible), count(DISTINCT uscc) FILTER (eligible)
        FROM decisions.eligibility_pairs WHERE as_of = ?""", [as_of]).fetchone()
    firms = con.execute("SELECT count(*) FROM decisions.eligibility_firms WHERE as_of = ?", [as_of]).fetchone()[0]
    gated = dict(con.execute("""SELECT g, count(*) FROM (SELECT unnest(gates) AS g FROM decisions.eligibility_firms
                                WHERE as_of = ?) GROUP BY g ORDER BY g""", [as_of]).fetchall())
    return EligibilitySummary(as_of, firms, len(products.products), pairs, eligible_firms, gated)


def _retire_wide_table(con: duckdb.DuckDBPyConnection) -> None:
    """Stores written before the narrow layout hold a table where the view now goes: keep its rows
    under another name rather than lose them."""
    if table_kind(con, "decisions.eligibility") == "BASE TABLE":
        con.execute("ALTER TABLE decisions.eligibility RENAME TO eligibility_wide_v1")


def match(con: duckdb.DuckDBPyConnection, uscc: str, as_of: date):
    """A firm's view: every product, eligible first (by rate, then the larger limit), then the rest by
    how close they come (match degree), each with what it lacks."""
    rows = con.execute(f"""
        SELECT product_id, bank_id, product_name, eligible, gates, gate_reasons, shortfalls, match_degree, limit_fen, rate_bp,
               term_months
        FROM ({eligibility_of_sql(as_of, f"(SELECT {lit(uscc)} AS uscc)")})
        ORDER BY eligible DESC, CASE WHEN eligible THEN rate_bp END, limit_fen DESC, match_degree DESC, product_id""").df()
    if rows.empty:
        known = con.execute("SELECT max(as_of) FROM decisions.eligibility_firms WHERE uscc = ?", [uscc]).fetchone()[0]
        raise ValueError(f"no eligibility for {uscc} on {as_of}" + (f" (latest: {known})" if known else
                                                                      ": not a registered firm, or no run for that date"))
    return rows


def previous_decision_date(con: duckdb.DuckDBPyConnection, as_of: date) -> date | None:
    """The last date before `as_of` whose eligibility was decided (None on the first night)."""
    return con.execute("SELECT max(as_of) FROM decisions.eligibility_firms WHERE as_of < ?", [as_of]).fetchone()[0]



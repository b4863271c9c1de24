"""Features for the PD model: the 19 indicators plus the monthly-panel signals a credit analyst
reads (six-month trends, arrears, whether tax filings and power use tell the same story), point in
time, with the business direction of each (the GBM's monotone constraints).

The panel signals read a fixed data month: the second month before the date's month, which every
department has delivered before the month begins. Two loans in the same month then rest on the same
data month whatever day they fall on, and revenue is never compared with power use of another month
(departments deliver between the 8th and the 20th).

One signal is not the firm's own: how much more often than the city's firms its industry's firms
are behind on social insurance in that data month (`sector_arrears_excess`). A downturn in one
industry shows there first, before a firm's own filings turn. It is computed over every firm, from
what was delivered before the date's month began, so it is the same all month for every firm of the
industry, whatever was delivered since or however the firms are partitioned."""

from __future__ import annotations

from datetime import date

from scoring.sql import EXACT_KWH, INDICATOR_TYPES, PointInTime, indicators_sql, negative_hits_sql, within
from valuecredit.sqltext import SQL, lit

# feature -> direction of risk: +1 a higher value never lowers the PD, -1 never raises it, 0 free
FEATURES: dict[str, int] = {
    "rd_intensity": -1, "valid_ip": -1, "rd_super_deduction": -1, "tech_staff_share": 0, "innovation_tier": -1,
    "revenue_12m": -1, "revenue_growth": -1, "tax_paid_12m": -1, "tax_grade": -1, "power_growth": -1,
    "debt_ratio": 1, "years_in_operation": -1, "trademarks": -1, "trade_value_12m": -1, "awards_3y": -1,
    "real_estate_value": -1, "headcount_growth": -1, "clean_contribution_months": -1, "penalties_3y": 1,
    "revenue_trend_6m": -1, "power_trend_6m": -1, "headcount_trend_6m": -1, "filing_gap_6m": 1,
    "si_arrears_months": 1, "tax_arrears_months_6m": 1, "power_in_arrears": 1, "negative_hits": 1, "industry": 0,
    "patents_granted": -1, "sector_arrears_excess": 1,
}
DATA_MONTH_LAG = 2
SECTOR_MIN_FIRMS = 30  # an industry's share of firms in arrears needs this many firms reporting


def sector_arrears_sql(targets: SQL, as_of: date | None = None) -> str:
    """(month_start, industry, sector_arrears_excess) for the month of each target's date: the
    share of the industry's firms in social-insurance arrears in the data month, less that share
    among all firms, from the rows visible on the last day before the month began; NULL for an
    industry with fewer than SECTOR_MIN_FIRMS firms reporting."""
    months = (f"(SELECT DATE {lit(as_of.replace(day=1).isoformat())} AS ms)" if as_of is not None
              else f"(SELECT DISTINCT CAST(date_trunc('month', as_of) AS DATE) AS ms FROM {targets})")
    visible = "{t}._delivered_on < m.ms AND ({t}._valid_to IS NULL OR {t}._valid_to >= m.ms)"
    return f"""
    WITH counts AS (
        SELECT m.ms, r.industry, count(*) AS firms, count(*) FILTER (s.arrears_months > 0) AS in_arrears
        FROM {months} m
        JOIN raw.social_insurance s
          ON s.period = strftime(m.ms - INTERVAL {DATA_MONTH_LAG} MONTH, '%Y-%m') AND {visible.format(t="s")}
        JOIN raw.registry r ON r.uscc = s.uscc AND {visible.format(t="r")}
        GROUP BY ALL)
    SELECT ms, industry,
        CASE WHEN firms >= {SECTOR_MIN_FIRMS}
             THEN in_arrears / firms - sum(in_arrears) OVER city / sum(firms) OVER city END AS sector_arrears_excess
    FROM counts WINDOW city AS (PARTITION BY ms)"""


def features_sql(targets: SQL, negative_rules, as_of: date | None = None, indicators: SQL | None = None,
                 hits: SQL | None = None, restrict: bool = False) -> str:
    """(uscc, as_of, every feature) for each target; NULL where the source has nothing. The
    indicators and negative-list hits are derived here unless relations already holding them for
    the same targets are given; `restrict` (one date) reads only the targets' rows."""
    pit = PointInTime(targets, as_of, restrict)
    indicators = indicators or f"({indicators_sql(targets, as_of, restrict)})"
    hits = hits or f"({negative_hits_sql(targets, negative_rules, as_of, restrict)})"
    numeric = ", ".join(f"i.{k}" for k, t in INDICATOR_TYPES.items() if t == "DOUBLE")
    return f"""
    WITH ind AS (SELECT * FROM {indicators}),
    rev AS (
        SELECT uscc, as_of, sum(revenue_fen) FILTER (k BETWEEN 0 AND 5) AS r6, sum(revenue_fen) FILTER (k BETWEEN 6 AND 11) AS r6p,
               count(*) FILTER (k BETWEEN 0 AND 5 AND tax_arrears_fen > 0) AS tax_arrears_months_6m
        FROM {pit.anchored("tax_monthly", DATA_MONTH_LAG)} WHERE k BETWEEN 0 AND 11 GROUP BY ALL),
    pw AS (
        SELECT uscc, as_of, sum({EXACT_KWH}) FILTER (k BETWEEN 0 AND 5) AS p6, sum({EXACT_KWH}) FILTER (k BETWEEN 6 AND 11) AS p6p,
               any_value(arrears_fen) FILTER (k = 0) AS power_arrears
        FROM {pit.anchored("power", DATA_MONTH_LAG)} WHERE k BETWEEN 0 AND 11 GROUP BY ALL),
    si AS (
        SELECT uscc, as_of, any_value(insured_headcount) FILTER (k = 0) AS hc0,
               any_value(insured_headcount) FILTER (k = 6) AS hc6, any_value(arrears_months) FILTER (k = 0) AS arrears
        FROM {pit.anchored("social_insurance", DATA_MONTH_LAG)} WHERE k IN (0, 6) GROUP BY ALL)
    SELECT i.uscc, i.as_of, {numeric},
        CASE i.innovation_status WHEN 'zhuanjingtexin' THEN 3 WHEN 'high_tech' THEN 2 WHEN 'tech_sme' THEN 1 ELSE 0 END
            AS innovation_tier,
        CASE i.tax_credit_grade WHEN 'A' THEN 5 WHEN 'B' THEN 4 WHEN 'M' THEN 3 WHEN 'C' THEN 2 WHEN 'D' THEN 1 END AS tax_grade,
        ln((rev.r6 + 1.0) / (rev.r6p + 1.0)) AS revenue_trend_6m,
        ln((pw.p6 + 1.0) / (pw.p6p + 1.0)) AS power_trend_6m,
        ln((si.hc0 + 1.0) / (si.hc6 + 1.0)) AS headcount_trend_6m,
        ln((rev.r6 + 1.0) / (rev.r6p + 1.0)) - ln((pw.p6 + 1.0) / (pw.p6p + 1.0)) AS filing_gap_6m,
        si.arrears::DOUBLE AS si_arrears_months, rev.tax_arrears_months_6m::DOUBLE AS tax_arrears_months_6m,
        CASE WHEN pw.power_arrears IS NOT NULL THEN (pw.power_arrears > 0)::DOUBLE END AS power_in_arrears,
        coalesce(h.n, 0)::DOUBLE AS negative_hits, reg.industry, coalesce(pat.n, 0)::DOUBLE AS patents_granted,
        sector.sector_arrears_excess
    FROM ind i LEFT JOIN rev USING (uscc, as_of) LEFT JOIN pw USING (uscc, as_of) LEFT JOIN si USING (uscc, as_of)
    LEFT JOIN (SELECT uscc, as_of, industry FROM {pit.rows("registry")}) reg USING (uscc, as_of)
    LEFT JOIN (SELECT uscc, as_of, count(*) AS n FROM {hits} GROUP BY ALL) h
        USING (uscc, as_of)
    LEFT JOIN (SELECT uscc, as_of, count(*) AS n FROM {pit.rows("patents")} WHERE {within("patents")} GROUP BY ALL) pat
        USING (uscc, as_of)
    LEFT JOIN ({sector_arrears_sql(targets, as_of)}) sector
        ON sector.industry = reg.industry AND sector.ms = date_trunc('month', i.as_of)
    """

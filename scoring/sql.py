"""The 19 indicators and the negative-list rules, as DuckDB SQL over the raw (versioned) tables.

Point in time: a row is visible as of date D when it was delivered on or before D and not yet
replaced by a newer delivery of the same key on D (`_delivered_on <= D < _valid_to`). Monthly
windows end at the source's current period as of D: the latest period any firm's file for that
source had been delivered by D. A filing for March delivered on 15 April is not visible on 10 April.

Every query takes a `targets` relation (uscc, as_of): one date for the nightly run, or one date per
loan for the training sample (features as of disbursement).
"""

from __future__ import annotations

from datetime import date

from data_contracts.contracts import contract_for
from valuecredit.ranges import counted_sql
from valuecredit.schema import INDICATOR_TYPES
from valuecredit.sqltext import SQL, lit, q

# each indicator's value column (its type in the schema); NULL means the source holds nothing usable on the firm
INDICATOR_KEYS = tuple(INDICATOR_TYPES)

# negative-list rule kinds and the parameters the catalogue must give each
NEGATIVE_RULE_PARAMS: dict[str, dict[str, type]] = {
    "dishonest_debtor": {}, "tax_violation": {}, "tax_grade_d": {}, "serious_illegal": {},
    "abnormal_operation": {}, "not_operating": {}, "tax_abnormal": {}, "overdue_loan": {}, "arrears": {"months": int},
    "excluded_industry": {"industries": list, "divisions": list, "financing_platforms": bool},
    "major_penalty": {"years": int}, "not_sme": {"size_classes": list}, "outside_region": {"district_prefix": str},
}
# the short name a gate shows for each kind of rule (`N01 失信被执行人`): the catalogue's own text is a sentence
NEGATIVE_RULE_NAMES: dict[str, str] = {
    "dishonest_debtor": "失信被执行人", "tax_violation": "重大税收违法失信主体", "tax_grade_d": "纳税信用等级D",
    "serious_illegal": "严重违法失信名单", "abnormal_operation": "经营异常名录", "not_operating": "非正常经营状态",
    "tax_abnormal": "税务非正常户", "overdue_loan": "逾期或不良贷款", "arrears": "社保或税款欠缴",
    "excluded_industry": "限制行业或融资平台", "major_penalty": "重大安全或环境处罚", "not_sme": "非中小企业",
    "outside_region": "非本市注册",
}
assert NEGATIVE_RULE_NAMES.keys() == NEGATIVE_RULE_PARAMS.keys()

# The date conditions the indicators and the negative list put on a source's rows, as of a date `{d}`:
# what a firm has in such a window changes when a date passes, with nothing delivered. The SQL below
# reads them from here, and an incremental night (scoring.changes) recomputes every firm
# for which one of them turns between the previous date and this one.
LISTED = "listed_on <= {d} AND (removed_on IS NULL OR removed_on > {d})"
WINDOWS: dict[str, tuple[str, ...]] = {
    "patents": ("granted_on <= {d}",
                "applied_on + to_years(CASE patent_type WHEN 'invention' THEN 20 WHEN 'utility' THEN 10 ELSE 15 END) > {d}"),
    "software_copyrights": ("registered_on <= {d}",),
    "qualifications": ("granted_on <= {d} AND expires_on > {d}",),
    "trademarks": ("registered_on <= {d} AND expires_on > {d}",),
    "subsidies": ("awarded_on > {d} - INTERVAL 3 YEAR AND awarded_on <= {d}",),
    "real_estate": ("acquired_on <= {d} AND (disposed_on IS NULL OR disposed_on > {d})",),
    "penalties": ("decided_on > {d} - INTERVAL 3 YEAR AND decided_on <= {d}",),
    "dishonest_debtors": (LISTED,), "tax_violations": (LISTED,), "market_registers": (LISTED,),
    "tax_abnormal": (LISTED,), "financing_platforms": (LISTED,),
    "registry": ("founded_on <= {d}",),
}


def within(source: str, i: int = 0, d: SQL = "as_of") -> SQL:
    return WINDOWS[source][i].format(d=d)


def major_penalty_window(years: int, d: SQL = "as_of") -> SQL:
    return f"decided_on <= {d} AND decided_on > {d} - INTERVAL {int(years)} YEAR"


def years_in_operation(d: SQL = "as_of") -> SQL:
    """Years since founding: the one indicator that moves every day for every firm (an incremental
    night carries a firm's other indicators forward and computes this one again; the ranges keep
    the founding date and count again with the same `counted_sql`)."""
    return f"CASE WHEN {within('registry', d=d)} THEN {counted_sql('founded_on', d)} END"


MIN_MONTHS_FOR_GROWTH = 6  # a growth rate needs at least this many reported months in each 12-month window
PIDX = "(CAST(substr({p}, 1, 4) AS INTEGER) * 12 + CAST(substr({p}, 6, 2) AS INTEGER) - 1)"


# kWh are the one measure delivered as floating point. Summed as doubles, their total depends on the
# order DuckDB's threads add them in, and the last bits change from run to run; as decimals (to a
# millionth of a kWh) every sum is exact, so the same data give byte-identical indicators.
EXACT_KWH = "CAST(kwh AS DECIMAL(38, 6))"


def pidx(col: SQL) -> SQL:
    """Month index of a 'YYYY-MM' period, so windows are integer ranges."""
    return PIDX.format(p=col)


class PointInTime:
    """SQL for the rows of each source visible as of each target's date."""

    def __init__(self, targets: SQL, as_of: date | None, restrict: bool = False):
        self.targets: SQL = targets
        self.as_of = as_of  # one date for every target: filter by a constant instead of joining
        self.restrict = restrict  # with one date: read only the targets' rows (a partition of the firms)

    def rows(self, source: str, firm: str = "uscc") -> SQL:
        if self.as_of is not None:
            d = f"DATE {lit(self.as_of.isoformat())}"
            # a source keyed otherwise (loan statuses, by loan) is cut by its join to one that has firms
            only = (f" AND s.{q(firm)} IN (SELECT uscc FROM {self.targets})"
                    if self.restrict and firm in contract_for(source).column_names else "")
            return (f"(SELECT {d} AS as_of, s.* FROM raw.{q(source)} s "
                    f"WHERE s._delivered_on <= {d} AND (s._valid_to IS NULL OR s._valid_to > {d}){only})")
        return (f"(SELECT t.as_of, s.* FROM raw.{q(source)} s JOIN {self.targets} t ON s.{q(firm)} = t.uscc "
                f"AND s._delivered_on <= t.as_of AND (s._valid_to IS NULL OR s._valid_to > t.as_of))")

    def current_period(self, source: str) -> SQL:
        """(as_of, cur): the source's latest period delivered by each date, as a month index."""
        dates = (f"(SELECT DATE {lit(self.as_of.isoformat())} AS as_of)" if self.as_of is not None
                 else f"(SELECT DISTINCT as_of FROM {self.targets})")
        return (f"(SELECT a.as_of, max({pidx('f.period')}) AS cur FROM {dates} a "
                f"JOIN (SELECT period, min(_delivered_on) AS first_delivered FROM raw.{q(source)} GROUP BY period) f "
                f"ON f.first_delivered <= a.as_of GROUP BY a.as_of)")

    def anchored(self, source: str, lag_months: int) -> SQL:
        """Monthly rows with k = months before a fixed data month: `lag_months` before the month of
        the date, the same for every firm and department whatever day the date falls on."""
        return (f"(SELECT r.*, year(r.as_of) * 12 + month(r.as_of) - 1 - {int(lag_months)} - {pidx('r.period')} AS k "
                f"FROM {self.rows(source)} r)")

    def windowed(self, source: str) -> SQL:
        """Monthly rows with k = months before the source's current period (0 = current)."""
        return (f"(SELECT r.*, c.cur - {pidx('r.period')} AS k FROM {self.rows(source)} r "
                f"JOIN {self.current_period(source)} c USING (as_of))")


def indicators_sql(targets: SQL, as_of: date | None = None, restrict: bool = False) -> str:
    """One row per target: (uscc, as_of, the 19 indicator values); `restrict` reads only the targets' rows."""
    pit = PointInTime(targets, as_of, restrict)
    g = MIN_MONTHS_FOR_GROWTH
    return f"""
    WITH tax AS (
        SELECT uscc, as_of,
            count(*) FILTER (k BETWEEN 0 AND 11) AS n12,
            count(*) FILTER (k BETWEEN 12 AND 23) AS n_prev,
            sum(revenue_fen) FILTER (k BETWEEN 0 AND 11) AS rev12,
            sum(revenue_fen) FILTER (k BETWEEN 12 AND 23) AS rev_prev,
            sum(vat_fen + income_tax_fen) FILTER (k BETWEEN 0 AND 11) AS tax12
        FROM {pit.windowed("tax_monthly")} WHERE k BETWEEN 0 AND 23 GROUP BY ALL),
    annual AS (  -- the latest settlement visible, no older than two fiscal years
        SELECT uscc, as_of, fiscal_year, rd_expense_fen, rd_super_deduction_fen, total_assets_fen,
               total_liabilities_fen, credit_grade
        FROM {pit.rows("tax_annual")} WHERE fiscal_year >= year(as_of) - 2
        QUALIFY row_number() OVER (PARTITION BY uscc, as_of ORDER BY fiscal_year DESC) = 1),
    fiscal_revenue AS (
        SELECT t.uscc, t.as_of, sum(t.revenue_fen) AS rev_fy
        FROM {pit.rows("tax_monthly")} t JOIN annual a
          ON a.uscc = t.uscc AND a.as_of = t.as_of AND substr(t.period, 1, 4) = CAST(a.fiscal_year AS VARCHAR)
        GROUP BY ALL),
    si AS (  -- a month is clean when neither social insurance nor the housing fund (if any) is in arrears
        SELECT uscc, as_of,
            any_value(technical_staff) FILTER (k = 0) AS tech_now,
            any_value(insured_headcount) FILTER (k = 0) AS hc_now,
            any_value(insured_headcount) FILTER (k = 12) AS hc_then,
            count(*) FILTER (arrears_months = 0 AND coalesce(fund_arrears, 0) = 0) AS clean24
        FROM {pit.windowed("social_insurance")}
        LEFT JOIN (SELECT uscc, as_of, period, arrears_months AS fund_arrears FROM {pit.rows("housing_fund")}) f
            USING (uscc, as_of, period)
        WHERE k BETWEEN 0 AND 23 GROUP BY ALL),
    pw AS (
        SELECT uscc, as_of,
            count(*) FILTER (k BETWEEN 0 AND 11) AS n12, count(*) FILTER (k BETWEEN 12 AND 23) AS n_prev,
            avg({EXACT_KWH}) FILTER (k BETWEEN 0 AND 11) AS kwh12, avg({EXACT_KWH}) FILTER (k BETWEEN 12 AND 23) AS kwh_prev
        FROM {pit.windowed("power")} WHERE k BETWEEN 0 AND 23 GROUP BY ALL),
    trade AS (
        SELECT uscc, as_of, sum(export_fen + import_fen) AS trade12
        FROM {pit.windowed("customs")} WHERE k BETWEEN 0 AND 11 GROUP BY ALL),
    ip AS (
        SELECT uscc, as_of, sum(w) AS ip_weight FROM (
            SELECT uscc, as_of, CASE patent_type WHEN 'invention' THEN 3.0 WHEN 'utility' THEN 1.0 ELSE 0.5 END AS w
            FROM {pit.rows("patents")}
            WHERE status = 'valid' AND {within("patents")} AND {within("patents", 1)}
            UNION ALL
            SELECT uscc, as_of, 1.0 FROM {pit.rows("software_copyrights")} WHERE {within("software_copyrights")})
        GROUP BY ALL),
    quals AS (
        SELECT uscc, as_of, max(CASE qualification WHEN 'zhuanjingtexin' THEN 3 WHEN 'high_tech' THEN 2 ELSE 1 END) AS tier
        FROM {pit.rows("qualifications")} WHERE {within("qualifications")} GROUP BY ALL),
    marks AS (
        SELECT uscc, as_of, sum(CASE WHEN well_known THEN 5 ELSE 1 END) AS marks
        FROM {pit.rows("trademarks")} WHERE {within("trademarks")} GROUP BY ALL),
    awards AS (
        SELECT uscc, as_of, count(*) AS awards FROM {pit.rows("subsidies")}
        WHERE {within("subsidies")} GROUP BY ALL),
    estate AS (
        SELECT uscc, as_of, sum(value_fen) AS estate FROM {pit.rows("real_estate")}
        WHERE {within("real_estate")} GROUP BY ALL),
    pen AS (
        SELECT uscc, as_of, count(*) AS penalties FROM {pit.rows("penalties")}
        WHERE {within("penalties")} GROUP BY ALL),
    reg AS (SELECT uscc, as_of, {years_in_operation()} AS years FROM {pit.rows("registry")})
    SELECT t.uscc, t.as_of,
        CASE WHEN fr.rev_fy > 0 THEN a.rd_expense_fen / fr.rev_fy END AS rd_intensity,
        coalesce(ip.ip_weight, 0.0) AS valid_ip,
        a.rd_super_deduction_fen / 100.0 AS rd_super_deduction,
        CASE WHEN si.hc_now > 0 THEN si.tech_now / si.hc_now END AS tech_staff_share,
        CASE coalesce(quals.tier, 0) WHEN 3 THEN 'zhuanjingtexin' WHEN 2 THEN 'high_tech' WHEN 1 THEN 'tech_sme'
             ELSE 'none' END AS innovation_status,
        CASE WHEN tax.n12 > 0 THEN tax.rev12 / 100.0 END AS revenue_12m,
        CASE WHEN tax.n12 >= {g} AND tax.n_prev >= {g} AND tax.rev_prev > 0
             THEN (tax.rev12 / tax.n12) / (tax.rev_prev / tax.n_prev) - 1 END AS revenue_growth,
        CASE WHEN tax.n12 > 0 THEN tax.tax12 / 100.0 END AS tax_paid_12m,
        a.credit_grade AS tax_credit_grade,
        CASE WHEN pw.n12 >= {g} AND pw.n_prev >= {g} AND pw.kwh_prev > 0 THEN pw.kwh12 / pw.kwh_prev - 1 END AS power_growth,
        CASE WHEN a.total_assets_fen > 0 THEN a.total_liabilities_fen / a.total_assets_fen END AS debt_ratio,
        reg.years AS years_in_operation,
        coalesce(marks.marks, 0.0) AS trademarks,
        coalesce(trade.trade12, 0) / 100.0 AS trade_value_12m,
        coalesce(awards.awards, 0.0) AS awards_3y,
        coalesce(estate.estate, 0) / 100.0 AS real_estate_value,
        CASE WHEN si.hc_then > 0 AND si.hc_now IS NOT NULL THEN si.hc_now / si.hc_then - 1 END AS headcount_growth,
        si.clean24::DOUBLE AS clean_contribution_months,
        coalesce(pen.penalties, 0.0) AS penalties_3y
    FROM {targets} t
    LEFT JOIN tax USING (uscc, as_of) LEFT JOIN annual a USING (uscc, as_of)
    LEFT JOIN fiscal_revenue fr USING (uscc, as_of) LEFT JOIN si USING (uscc, as_of)
    LEFT JOIN pw USING (uscc, as_of)
    LEFT JOIN trade USING (uscc, as_of) LEFT JOIN ip USING (uscc, as_of) LEFT JOIN quals USING (uscc, as_of)
    LEFT JOIN marks USING (uscc, as_of) LEFT JOIN awards USING (uscc, as_of) LEFT JOIN estate USING (uscc, as_of)
    LEFT JOIN pen USING (uscc, as_of) LEFT JOIN reg USING (uscc, as_of)
    """


def negative_hits_sql(targets: SQL, rules, as_of: date | None = None, restrict: bool = False) -> str:
    """(uscc, as_of, rule_id, rule, source, evidence_date, detail): every hit of every enabled rule."""
    pit = PointInTime(targets, as_of, restrict)
    parts = []
    for r in rules:
        if not r.enabled:
            continue
        p = r.params
        head = f"SELECT uscc, as_of, {lit(r.id)} AS rule_id, {lit(r.rule)} AS rule"
        if r.rule == "dishonest_debtor":
            sql = (f"{head}, 'dishonest_debtors' AS source, listed_on AS evidence_date, "
                   f"subject_type || ' ' || case_no AS detail FROM {pit.rows('dishonest_debtors')} WHERE {within('dishonest_debtors')}")
        elif r.rule == "tax_violation":
            sql = (f"{head}, 'tax_violations', listed_on, case_no FROM {pit.rows('tax_violations')} WHERE {within('tax_violations')}")
        elif r.rule in ("serious_illegal", "abnormal_operation"):
            sql = (f"{head}, 'market_registers', listed_on, case_no || ' ' || reason FROM {pit.rows('market_registers')} "
                   f"WHERE register = {lit(r.rule)} AND {within('market_registers')}")
        elif r.rule == "tax_grade_d":
            sql = (f"{head}, 'tax_annual', _delivered_on, 'fiscal year ' || fiscal_year || ' grade D' FROM ("
                   f"SELECT * FROM {pit.rows('tax_annual')} WHERE fiscal_year >= year(as_of) - 2 "
                   f"QUALIFY row_number() OVER (PARTITION BY uscc, as_of ORDER BY fiscal_year DESC) = 1) "
                   f"WHERE credit_grade = 'D'")
        elif r.rule == "not_operating":
            sql = (f"{head}, 'registry', status_date, 'status ' || status FROM {pit.rows('registry')} "
                   f"WHERE status <> '存续'")
        elif r.rule == "tax_abnormal":
            sql = (f"{head}, 'tax_abnormal', listed_on, case_no FROM {pit.rows('tax_abnormal')} WHERE {within('tax_abnormal')}")
        elif r.rule == "excluded_industry":
            # a section (K, real estate), a division (两高一剩: GB/T 4754 two-digit codes), or on the
            # finance bureau's list of local-government financing platforms
            listed = [f"{col} IN ({', '.join(lit(v) for v in p[key])})"
                      for col, key in (("industry", "industries"), ("industry_division", "divisions")) if p[key]]
            sql = (f"{head}, 'registry', _delivered_on, 'industry ' || industry || ' division ' || industry_division "
                   f"FROM {pit.rows('registry')} WHERE {' OR '.join(listed) or 'false'}")
            if p["financing_platforms"]:
                sql += (f" UNION ALL {head}, 'financing_platforms', listed_on, 'financing platform ' || platform_id "
                        f"FROM {pit.rows('financing_platforms')} WHERE {within('financing_platforms')}")
        elif r.rule == "not_sme":
            sizes = ", ".join(lit(s) for s in p["size_classes"])
            sql = (f"{head}, 'registry', _delivered_on, 'size class ' || size_class FROM {pit.rows('registry')} "
                   f"WHERE size_class IN ({sizes})")
        elif r.rule == "outside_region":
            sql = (f"{head}, 'registry', _delivered_on, 'district ' || district_code FROM {pit.rows('registry')} "
                   f"WHERE NOT starts_with(district_code, {lit(p['district_prefix'])})")
        elif r.rule == "major_penalty":
            sql = (f"{head}, 'penalties', decided_on, decision_no || ' ' || severity FROM {pit.rows('penalties')} "
                   f"WHERE severity <> 'general' AND {major_penalty_window(p['years'])}")
        elif r.rule == "arrears":
            m = int(p["months"])
            sql = (f"{head}, 'social_insurance', last_day(CAST(period || '-01' AS DATE)), "
                   f"'social insurance ' || arrears_months || ' months in arrears' "
                   f"FROM {pit.windowed('social_insurance')} WHERE k = 0 AND arrears_months > {m} "
                   f"UNION ALL {head}, 'tax_monthly', last_day(CAST(max(period) || '-01' AS DATE)), "
                   f"'tax arrears in each of the last ' || count(*) || ' months' "
                   f"FROM {pit.windowed('tax_monthly')} WHERE k BETWEEN 0 AND {m} AND tax_arrears_fen > 0 "
                   f"GROUP BY uscc, as_of HAVING count(*) = {m + 1}")
        elif r.rule == "overdue_loan":
            # the latest status of each programme loan still outstanding
            sql = (f"SELECT l.uscc, s.as_of, {lit(r.id)}, {lit(r.rule)}, 'loan_status', "
                   f"last_day(CAST(s.period || '-01' AS DATE)), "
                   f"s.loan_id || ' ' || s.classification || ' dpd ' || s.dpd "
                   f"FROM (SELECT * FROM {_loan_status_rows(pit)} "
                   f"QUALIFY row_number() OVER (PARTITION BY loan_id, as_of ORDER BY period DESC) = 1) s "
                   f"JOIN (SELECT loan_id, uscc FROM raw.loans WHERE _valid_to IS NULL) l USING (loan_id) "
                   f"WHERE s.outstanding_fen > 0 AND (s.dpd > 0 OR s.classification IN ('次级', '可疑', '损失'))")
        else:  # the catalogue loader refuses unknown rules; this guards the two lists drifting apart
            raise ValueError(f"no SQL for negative-list rule {r.rule!r}")
        parts.append(f"SELECT * FROM ({sql})")
    body = "\nUNION ALL\n".join(parts) if parts else (
        "SELECT NULL::VARCHAR, NULL::DATE, NULL::VARCHAR, NULL::VARCHAR, NULL::VARCHAR, NULL::DATE, NULL::VARCHAR WHERE false")
    return (f"SELECT h.* FROM ({body}) h(uscc, as_of, rule_id, rule, source, evidence_date, detail) "
            f"SEMI JOIN {targets} t USING (uscc, as_of)")


def _loan_status_rows(pit: PointInTime) -> SQL:
    """Loan status has no firm column: in the per-target mode, reach the firm through the loan."""
    if pit.as_of is not None:
        return pit.rows("loan_status")
    return (f"(SELECT t.as_of, s.* FROM raw.loan_status s JOIN raw.loans l ON l.loan_id = s.loan_id "
            f"AND l._valid_to IS NULL JOIN {pit.targets} t ON t.uscc = l.uscc "
            f"AND s._delivered_on <= t.as_of AND (s._valid_to IS NULL OR s._valid_to > t.as_of))")

"""The 19 indicators as an analyst would write them in pandas: the baseline for the SQL.

Same definitions as scoring/sql.py (point in time, windows ending at each source's
current period), written the straightforward way: load each raw table, filter, group by firm.
`compare` checks the two implementations agree firm by firm.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from scoring.sql import INDICATOR_KEYS, INDICATOR_TYPES, MIN_MONTHS_FOR_GROWTH


def _load(con: duckdb.DuckDBPyConnection, source: str, cols: str) -> pd.DataFrame:
    return con.execute(f"SELECT {cols}, _delivered_on, _valid_to FROM raw.{source}").df()


def _pit(df: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    return df[(df["_delivered_on"] <= as_of) & (df["_valid_to"].isna() | (df["_valid_to"] > as_of))]


def _month_index(period: pd.Series) -> pd.Series:
    return period.str[:4].astype(int) * 12 + period.str[5:7].astype(int) - 1


def _windowed(df: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Rows visible on the date, with k = months before the source's current period."""
    first = df.groupby("period")["_delivered_on"].min()
    cur = _month_index(pd.Series(first[first <= as_of].index)).max()
    out = _pit(df, as_of).copy()
    out["k"] = cur - _month_index(out["period"])
    return out


def pandas_indicators(con: duckdb.DuckDBPyConnection, as_of: date) -> pd.DataFrame:
    d = pd.Timestamp(as_of)
    g = MIN_MONTHS_FOR_GROWTH
    reg = _pit(_load(con, "registry", "uscc, founded_on"), d)
    out = pd.DataFrame({"uscc": reg["uscc"].to_numpy()}).set_index("uscc")
    years = (d - reg["founded_on"]).dt.days / 365.25
    out["years_in_operation"] = pd.Series(np.where(reg["founded_on"] <= d, years, np.nan), index=reg["uscc"].to_numpy())

    tax_all = _load(con, "tax_monthly", "uscc, period, revenue_fen, vat_fen, income_tax_fen")
    tax = _windowed(tax_all, d)
    w = tax[(tax.k >= 0) & (tax.k <= 23)].copy()
    w["recent"] = w.k <= 11
    w["tax"] = w.vat_fen + w.income_tax_fen
    recent, prev = w[w.recent].groupby("uscc"), w[~w.recent].groupby("uscc")
    n12, n_prev = recent.size(), prev.size()
    rev12, rev_prev = recent.revenue_fen.sum(), prev.revenue_fen.sum()
    out["revenue_12m"] = rev12 / 100.0
    out["tax_paid_12m"] = recent.tax.sum() / 100.0
    t = pd.DataFrame({"n12": n12, "n_prev": n_prev, "rev12": rev12, "rev_prev": rev_prev})
    ok = (t.n12 >= g) & (t.n_prev >= g) & (t.rev_prev > 0)
    out["revenue_growth"] = ((t.rev12 / t.n12) / (t.rev_prev / t.n_prev) - 1).where(ok)

    annual = _pit(_load(con, "tax_annual", "uscc, fiscal_year, rd_expense_fen, rd_super_deduction_fen, "
                                           "total_assets_fen, total_liabilities_fen, credit_grade"), d)
    annual = annual[annual.fiscal_year >= d.year - 2].sort_values("fiscal_year").groupby("uscc").tail(1).set_index("uscc")
    visible_tax = tax[["uscc", "period", "revenue_fen"]]
    fy = visible_tax.merge(annual[["fiscal_year"]], left_on="uscc", right_index=True)
    fy = fy[fy.period.str[:4] == fy.fiscal_year.astype(str)].groupby("uscc").revenue_fen.sum()
    out["rd_intensity"] = (annual.rd_expense_fen / fy).where(fy > 0)
    out["rd_super_deduction"] = annual.rd_super_deduction_fen / 100.0
    out["tax_credit_grade"] = annual.credit_grade
    out["debt_ratio"] = (annual.total_liabilities_fen / annual.total_assets_fen).where(annual.total_assets_fen > 0)

    si = _windowed(_load(con, "social_insurance", "uscc, period, insured_headcount, technical_staff, arrears_months"), d)
    si = si[(si.k >= 0) & (si.k <= 23)]
    fund = _pit(_load(con, "housing_fund", "uscc, period, arrears_months"), d)
    si = si.merge(fund[["uscc", "period", "arrears_months"]].rename(columns={"arrears_months": "fund_arrears"}),
                  on=["uscc", "period"], how="left")
    now, then = si[si.k == 0].set_index("uscc"), si[si.k == 12].set_index("uscc")
    out["tech_staff_share"] = (now.technical_staff / now.insured_headcount).where(now.insured_headcount > 0)
    hc_then = then.insured_headcount.reindex(out.index)
    hc_now = now.insured_headcount.reindex(out.index)
    out["headcount_growth"] = (hc_now / hc_then - 1).where((hc_then > 0) & hc_now.notna())
    clean = (si.arrears_months == 0) & (si.fund_arrears.fillna(0) == 0)
    out["clean_contribution_months"] = clean.groupby(si.uscc).sum().astype(float)

    pw = _windowed(_load(con, "power", "uscc, period, kwh"), d)
    pw = pw[(pw.k >= 0) & (pw.k <= 23)]
    r, p = pw[pw.k <= 11].groupby("uscc").kwh, pw[pw.k >= 12].groupby("uscc").kwh
    t = pd.DataFrame({"n12": r.size(), "n_prev": p.size(), "kwh12": r.mean(), "kwh_prev": p.mean()})
    out["power_growth"] = (t.kwh12 / t.kwh_prev - 1).where((t.n12 >= g) & (t.n_prev >= g) & (t.kwh_prev > 0))

    cu = _windowed(_load(con, "customs", "uscc, period, export_fen, import_fen"), d)
    cu = cu[(cu.k >= 0) & (cu.k <= 11)]
    out["trade_value_12m"] = ((cu.export_fen + cu.import_fen).groupby(cu.uscc).sum() / 100.0).reindex(out.index).fillna(0.0)

    pat = _pit(_load(con, "patents", "uscc, patent_type, applied_on, granted_on, status"), d)
    term = pat.patent_type.map({"invention": 20, "utility": 10, "design": 15})
    expires = pd.Series(pd.NaT, index=pat.index, dtype="datetime64[us]")
    for years in (10, 15, 20):
        sel = term == years
        expires[sel] = pat.applied_on[sel] + pd.DateOffset(years=years)
    pat = pat[(pat.status == "valid") & (pat.granted_on <= d) & (expires > d)]
    ip = pat.patent_type.map({"invention": 3.0, "utility": 1.0, "design": 0.5}).groupby(pat.uscc).sum()
    sw = _pit(_load(con, "software_copyrights", "uscc, registered_on"), d)
    sw = sw[sw.registered_on <= d].groupby("uscc").size().astype(float)
    out["valid_ip"] = ip.reindex(out.index).fillna(0.0) + sw.reindex(out.index).fillna(0.0)

    q = _pit(_load(con, "qualifications", "uscc, qualification, granted_on, expires_on"), d)
    q = q[(q.granted_on <= d) & (q.expires_on > d)]
    tier = q.qualification.map({"zhuanjingtexin": 3, "high_tech": 2, "tech_sme": 1}).groupby(q.uscc).max()
    out["innovation_status"] = tier.reindex(out.index).fillna(0).map({3: "zhuanjingtexin", 2: "high_tech", 1: "tech_sme",
                                                                        0: "none"})
    tm = _pit(_load(con, "trademarks", "uscc, registered_on, expires_on, well_known"), d)
    tm = tm[(tm.registered_on <= d) & (tm.expires_on > d)]
    marks = pd.Series(np.where(tm.well_known, 5.0, 1.0), index=tm.index).groupby(tm.uscc).sum()
    out["trademarks"] = marks.reindex(out.index).fillna(0.0)
    three_years_ago = d - pd.DateOffset(years=3)
    aw = _pit(_load(con, "subsidies", "uscc, awarded_on"), d)
    aw = aw[(aw.awarded_on > three_years_ago) & (aw.awarded_on <= d)]
    out["awards_3y"] = aw.groupby("uscc").size().reindex(out.index).fillna(0).astype(float)
    re_ = _pit(_load(con, "real_estate", "uscc, acquired_on, disposed_on, value_fen"), d)
    re_ = re_[(re_.acquired_on <= d) & (re_.disposed_on.isna() | (re_.disposed_on > d))]
    out["real_estate_value"] = (re_.groupby("uscc").value_fen.sum() / 100.0).reindex(out.index).fillna(0.0)
    pen = _pit(_load(con, "penalties", "uscc, decided_on"), d)
    pen = pen[(pen.decided_on > three_years_ago) & (pen.decided_on <= d)]
    out["penalties_3y"] = pen.groupby("uscc").size().reindex(out.index).fillna(0).astype(float)
    return out.reindex(columns=list(INDICATOR_KEYS)).rename_axis("uscc").reset_index()


def compare(sql: pd.DataFrame, pandas_: pd.DataFrame, rtol: float = 1e-9) -> dict[str, int]:
    """Firms whose value differs, per indicator (0 everywhere when the implementations agree)."""
    a = sql.set_index("uscc").sort_index()
    b = pandas_.set_index("uscc").reindex(a.index)
    diffs = {"firms_only_in_one": int(len(a.index.symmetric_difference(pandas_.set_index("uscc").index)))}
    for k in INDICATOR_KEYS:
        x, y = a[k], b[k]
        if INDICATOR_TYPES[k] == "VARCHAR":
            same = (x.fillna("<NA>").astype(str) == y.fillna("<NA>").astype(str))
        else:
            xv, yv = x.to_numpy(float), y.to_numpy(float)
            # growth rates near 0 differ in the last bits with the order of summation: an absolute
            # tolerance of 1e-12 on top of the relative one
            same = np.isclose(xv, yv, rtol=rtol, atol=1e-12) | (np.isnan(xv) & np.isnan(yv))
        diffs[k] = int((~np.asarray(same)).sum())
    return diffs

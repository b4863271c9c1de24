"""The 4+19+1 score on hand-built firms whose every indicator, point and verdict is computed by hand."""

from datetime import date, timedelta

import numpy as np
import pytest

from data_contracts.contracts import contract_for
from data_contracts.identifiers import make_uscc
from scoring.catalogue import load_catalogue
from scoring.checks import check_scores
from scoring.score import build_indicators, build_scores, points_sql
from simulate.landing import add_months
from valuecredit.store import connect

AS_OF = date(2026, 6, 20)  # May's tax filing (15 June) is visible; the 2025 settlement (10 June) too
CAT = load_catalogue()


def uscc(n: int) -> str:
    return str(make_uscc(np.array(["500103"]), np.array([n]))[0])


FULL, EMPTY = uscc(1), uscc(2)


def put(con, source: str, rows: list[dict], delivered_on: date, valid_to: date | None = None) -> None:
    """Rows as ingestion would have stored them, delivered on the given date."""
    cols = contract_for(source).column_names
    for i, r in enumerate(rows):
        values = [r.get(c) for c in cols] + [f"test/{source}", i + 1, delivered_on, delivered_on, None, valid_to]
        con.execute(f"INSERT INTO raw.{source} VALUES ({', '.join('?' * len(values))})", values)


def registry(firm: str, founded: date, **kw) -> dict:
    row = dict(uscc=firm, name="重庆测试有限公司", district_code="500103", industry="C", industry_division="34", founded_on=founded,
               registered_capital_fen=100_000_000, size_class="小型", status="存续", status_date=founded,
               legal_rep_name="张三明", legal_rep_id="x")
    row.update(kw)
    return row


def monthly(con, source: str, firm: str, periods: list[str], make, day: int) -> None:
    """One delivery per period, on `day` of the following month, as departments deliver."""
    for p in periods:
        nxt = add_months(p, 1)
        put(con, source, [dict(uscc=firm, period=p, **make(p))], date(int(nxt[:4]), int(nxt[5:]), day))


LAST24 = [add_months("2026-05", -k) for k in range(23, -1, -1)]  # 2024-06 .. 2026-05
RECENT = set(LAST24[12:])


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    con = connect(tmp_path_factory.mktemp("score") / "s.duckdb")
    put(con, "registry", [registry(FULL, date(2019, 1, 1)), registry(EMPTY, date(2025, 12, 1))], date(2024, 1, 3))
    # tax: 1,000,000 RMB a month in the last 12 months, 800,000 in the 12 before; 60,000 tax a month
    monthly(con, "tax_monthly", FULL, LAST24, lambda p: dict(
        revenue_fen=100_000_000 if p in RECENT else 80_000_000, vat_fen=5_000_000, income_tax_fen=1_000_000,
        tax_arrears_fen=0), 15)
    put(con, "tax_annual", [dict(uscc=FULL, fiscal_year=2025, rd_expense_fen=55_000_000, rd_super_deduction_fen=55_000_000,
                                 total_assets_fen=1_000_000_000, total_liabilities_fen=600_000_000, credit_grade="A")],
        date(2026, 6, 10))
    # social insurance: 40 insured a year ago, 50 now (10 technical); arrears in two months
    monthly(con, "social_insurance", FULL, LAST24, lambda p: dict(
        insured_headcount=50 if p == "2026-05" else 40, technical_staff=10, contribution_fen=1,
        arrears_months=1 if p in ("2025-01", "2025-02") else 0), 12)
    monthly(con, "housing_fund", FULL, LAST24, lambda p: dict(
        depositors=30, contribution_fen=1, arrears_months=1 if p == "2025-09" else 0), 10)
    monthly(con, "power", FULL, LAST24, lambda p: dict(kwh=1100.0 if p in RECENT else 1000.0, arrears_fen=0), 8)
    monthly(con, "customs", FULL, LAST24[12:], lambda p: dict(export_fen=10_000_000, import_fen=0), 20)
    d = date(2024, 1, 5)
    put(con, "patents", [
        dict(patent_no="P1", uscc=FULL, patent_type="invention", applied_on=date(2022, 1, 1), granted_on=date(2023, 1, 1), status="valid"),
        dict(patent_no="P2", uscc=FULL, patent_type="utility", applied_on=date(2022, 1, 1), granted_on=date(2023, 1, 1), status="valid"),
        dict(patent_no="P3", uscc=FULL, patent_type="design", applied_on=date(2022, 1, 1), granted_on=date(2023, 1, 1), status="lapsed"),
        dict(patent_no="P4", uscc=FULL, patent_type="utility", applied_on=date(2015, 1, 1), granted_on=date(2016, 1, 1), status="valid"),
    ], d)  # P3 lapsed, P4 past its 10-year term: 3 + 1 = 4 points of IP, plus 2 software copyrights
    put(con, "software_copyrights", [dict(reg_no=f"S{i}", uscc=FULL, registered_on=date(2023, 3, 1)) for i in (1, 2)], d)
    put(con, "qualifications", [
        dict(uscc=FULL, qualification="high_tech", granted_on=date(2024, 1, 1), expires_on=date(2027, 1, 1)),
        dict(uscc=FULL, qualification="zhuanjingtexin", granted_on=date(2020, 1, 1), expires_on=date(2023, 1, 1)),
    ], d)
    put(con, "trademarks", [
        dict(reg_no="T1", uscc=FULL, registered_on=date(2020, 1, 1), expires_on=date(2030, 1, 1), well_known=True),
        dict(reg_no="T2", uscc=FULL, registered_on=date(2020, 1, 1), expires_on=date(2030, 1, 1), well_known=False),
        dict(reg_no="T3", uscc=FULL, registered_on=date(2010, 1, 1), expires_on=date(2020, 1, 1), well_known=False),
    ], d)
    put(con, "subsidies", [
        dict(award_id=f"A{i}", uscc=FULL, awarded_on=on, award_type="subsidy", award_name="x", amount_fen=1)
        for i, on in enumerate([date(2024, 1, 1), date(2023, 6, 21), date(2023, 6, 20)])], d)  # the last is 3 years old
    put(con, "real_estate", [
        dict(cert_no="R1", uscc=FULL, acquired_on=date(2020, 1, 1), disposed_on=None, floor_area_m2=100.0, value_fen=300_000_000),
        dict(cert_no="R2", uscc=FULL, acquired_on=date(2020, 1, 1), disposed_on=date(2023, 1, 1), floor_area_m2=100.0, value_fen=900_000_000),
    ], d)
    put(con, "penalties", [
        dict(decision_no="F1", uscc=FULL, decided_on=date(2023, 12, 1), severity="general", reason="x", amount_fen=1),
        dict(decision_no="F2", uscc=FULL, decided_on=date(2022, 1, 1), severity="general", reason="x", amount_fen=1),
    ], d)
    build_indicators(con, AS_OF)
    build_scores(con, AS_OF, CAT)
    yield con
    con.close()


def row(con, table: str, firm: str, as_of: date = AS_OF) -> dict:
    df = con.execute(f"SELECT * FROM {table} WHERE uscc = ? AND as_of = ?", [firm, as_of]).df()
    assert len(df) == 1
    return df.iloc[0].to_dict()


# indicator: (value, points), each worked out by hand from the fixture and the catalogue
FULL_EXPECTED = {
    "rd_intensity": (0.05, 100),               # 550,000 / (5 x 800,000 + 7 x 1,000,000): on the 5% edge
    "valid_ip": (6.0, 85),                     # invention 3 + utility 1 + 2 software copyrights: on the 6 edge
    "rd_super_deduction": (550_000.0, 70),     # 500k-2M band
    "tech_staff_share": (0.2, 80),             # 10 / 50: on the 20% edge, 20-30% band
    "innovation_status": ("high_tech", 80),    # 专精特新 expired in 2023
    "revenue_12m": (12_000_000.0, 75),         # 10M-30M band
    "revenue_growth": (0.25, 75),              # 1,000,000 / 800,000 - 1 on the -0.5..0.5 scale
    "tax_paid_12m": (720_000.0, 60),           # 12 x 60,000: 200k-1M band
    "tax_credit_grade": ("A", 100),
    "power_growth": (0.1, 60),                 # 1100 / 1000 - 1
    "debt_ratio": (0.6, 60),                   # 600 / 1000: on the 0.6 edge, lower is better
    "years_in_operation": ((AS_OF - date(2019, 1, 1)).days / 365.25, 80),  # 7.47 years: 5-10 band
    "trademarks": (6.0, 80),                   # well-known 5 + 1; the expired one does not count
    "trade_value_12m": (1_200_000.0, 60),
    "awards_3y": (2.0, 80),                    # the award of exactly 3 years ago has dropped out
    "real_estate_value": (3_000_000.0, 70),    # the disposed property does not count
    "headcount_growth": (0.25, 100 * 0.55 / 0.6),  # 50 / 40 - 1 on the -0.3..0.3 scale
    "clean_contribution_months": (21.0, 75),   # 24 - 2 social-insurance arrears - 1 fund arrears
    "penalties_3y": (1.0, 60),
}


def test_every_indicator_of_a_full_firm_by_hand(store):
    ind, sc = row(store, "features.indicators", FULL), row(store, "scores.commercial_value", FULL)
    for key, (value, points) in FULL_EXPECTED.items():
        assert ind[key] == pytest.approx(value, rel=1e-12) if isinstance(value, float) else ind[key] == value, key
        assert sc[f"pts_{key}"] == pytest.approx(points, abs=1e-9), key
    assert list(sc["missing"]) == []


def test_dimension_scores_total_and_grade_by_hand(store):
    sc = row(store, "scores.commercial_value", FULL)
    innovation = 0.30 * 100 + 0.25 * 85 + 0.15 * 70 + 0.15 * 80 + 0.15 * 80                    # 85.75
    operations = 0.15 * (75 + 75 + 60 + 100 + 60 + 80) + 0.10 * 60                            # 73.5
    brand = 0.30 * 80 + 0.25 * 60 + 0.25 * 80 + 0.20 * 70                                    # 73
    social = 0.30 * (100 * 0.55 / 0.6) + 0.45 * 75 + 0.25 * 60                                # 76.25
    assert (sc["innovation"], sc["operations"], sc["brand"], sc["social"]) == pytest.approx(
        (85.75, 73.5, 73.0, 76.25), abs=1e-9)
    assert (innovation, operations, brand, social) == pytest.approx((85.75, 73.5, 73.0, 76.25))
    assert sc["total"] == pytest.approx(770.375, abs=1e-4)  # 10 x (.25 x 85.75 + .4 x 73.5 + .15 x 73 + .2 x 76.25)
    assert sc["grade"] == "AA" and not sc["excluded"] and sc["hits"] == 0
    assert sc["catalogue_version"] == CAT.version and sc["catalogue_hash"] == CAT.content_hash
    assert len(sc["snapshot_id"]) == 64


def test_missing_sources_earn_neutral_points_and_a_flag_never_zero(store):
    ind, sc = row(store, "features.indicators", EMPTY), row(store, "scores.commercial_value", EMPTY)
    missing = {"rd_intensity", "rd_super_deduction", "tech_staff_share", "revenue_12m", "revenue_growth", "tax_paid_12m",
               "tax_credit_grade", "power_growth", "debt_ratio", "headcount_growth", "clean_contribution_months"}
    assert set(sc["missing"]) == missing
    for key in missing:
        assert ind[key] is None or ind[key] != ind[key], key  # NULL, not 0
        assert sc[f"pts_{key}"] == CAT.indicator(key).missing_points == 50
    # absence of events is a true zero, not missing: no patents means no patents
    assert ind["valid_ip"] == 0 and sc["pts_valid_ip"] == 0 and ind["innovation_status"] == "none"
    assert sc["pts_penalties_3y"] == 100 and sc["pts_years_in_operation"] == 0  # founded 6 months ago


def test_no_look_ahead(store):
    """On 9 June neither May's tax filing (delivered 15 June) nor the 2025 settlement (10 June) is visible."""
    early = date(2026, 6, 9)
    build_indicators(store, early)
    ind = row(store, "features.indicators", FULL, early)
    # the tax window now ends in April: 2025-05 at 800,000 and 11 months at 1,000,000
    assert ind["revenue_12m"] == pytest.approx(11_800_000)
    assert ind["rd_intensity"] is None or ind["rd_intensity"] != ind["rd_intensity"]  # settlement not yet arrived
    assert ind["tax_credit_grade"] is None
    later = row(store, "features.indicators", FULL)
    assert later["revenue_12m"] == 12_000_000


@pytest.mark.parametrize("ind", CAT.indicators, ids=lambda i: i.key)
def test_every_band_edge_in_sql_matches_the_catalogue(store, ind):
    t = ind.transform
    if t.type == "bands":
        cases = [(e, p) for e, p in zip(t.edges, t.points[1:])]                     # on the edge: the upper band
        cases += [(np.nextafter(e, -np.inf), p) for e, p in zip(t.edges, t.points)]  # just below: the lower band
        cases += [(t.edges[0] - 1e6, t.points[0]), (t.edges[-1] + 1e6, t.points[-1])]
    elif t.type == "linear":
        top, bottom = (100.0, 0.0) if ind.direction == "higher" else (0.0, 100.0)
        cases = [(t.hi, top), (t.hi + 5, top), (t.lo, bottom), (t.lo - 5, bottom), ((t.lo + t.hi) / 2, 50.0)]
    else:
        cases = list(t.categories.items())
    cases.append((None, ind.missing_points))
    for value, expected in cases:
        typ = "VARCHAR" if t.type == "categories" else "DOUBLE"
        got = store.execute(f"SELECT {points_sql(ind)} FROM (SELECT ?::{typ} AS {ind.key})", [value]).fetchone()[0]
        assert got == pytest.approx(expected), (ind.key, value)
        if value is not None:
            assert t.apply(value, ind.direction) == pytest.approx(expected), (ind.key, value)


def test_score_checks_pass_on_a_sound_date(store):
    results = dict(check_scores(store, AS_OF, CAT))
    assert all(o.passed for o in results.values()), {k: o.description for k, o in results.items()}


def test_rerunning_a_date_replaces_it(store):
    before = store.execute("SELECT * FROM scores.commercial_value WHERE as_of = ? ORDER BY uscc", [AS_OF]).fetchall()
    build_indicators(store, AS_OF)
    build_scores(store, AS_OF, CAT)
    assert store.execute("SELECT * FROM scores.commercial_value WHERE as_of = ? ORDER BY uscc", [AS_OF]).fetchall() == before


def test_a_day_later_only_the_calendar_moves(store):
    """No delivery on 21 June: only the firm's age and the 3-year award window move (the award of
    21 June 2023 drops out)."""
    nxt = AS_OF + timedelta(days=1)
    build_indicators(store, nxt)
    a, b = row(store, "features.indicators", FULL), row(store, "features.indicators", FULL, nxt)
    changed = {k for k in FULL_EXPECTED if a[k] != b[k]}
    assert changed == {"years_in_operation", "awards_3y"}
    assert (a["awards_3y"], b["awards_3y"]) == (2, 1)


# negative list: one firm that hits each rule, and one near miss that must not
HIT = {rule: uscc(100 + i) for i, rule in enumerate(
    ["N01", "N02", "N03", "N04", "N05", "N06", "N07", "N08", "N08tax", "N09", "N10", "N11", "N12",
     "N09division", "N09platform", "N13"])}
MISS = {rule: uscc(200 + i) for i, rule in enumerate(["N01", "N02", "N03", "N05", "N06", "N07", "N08", "N10",
                                                      "N09division", "N09platform", "N13"])}


@pytest.fixture(scope="module")
def neg_store(tmp_path_factory):
    con = connect(tmp_path_factory.mktemp("neg") / "n.duckdb")
    d0 = date(2024, 1, 3)
    regs = [registry(f, date(2015, 1, 1)) for f in list(HIT.values()) + list(MISS.values())
            if f not in (HIT["N06"], HIT["N09"], HIT["N11"], HIT["N12"], MISS["N06"], HIT["N09division"], MISS["N09division"])]
    regs += [registry(HIT["N06"], date(2015, 1, 1), status="吊销", status_date=date(2026, 1, 1)),
             registry(HIT["N09"], date(2015, 1, 1), industry="K"),
             registry(HIT["N11"], date(2015, 1, 1), size_class="大型"),
             registry(HIT["N12"], date(2015, 1, 1), district_code="110105"),
             # steel (31) is of the 两高一剩 divisions; shipbuilding's division (37) as a whole is not
             registry(HIT["N09division"], date(2015, 1, 1), industry_division="31"),
             registry(MISS["N09division"], date(2015, 1, 1), industry_division="37")]
    put(con, "registry", regs, d0)
    # cancelled on 1 July, known from 3 July: on 20 June the firm is still in operation
    put(con, "registry", [registry(MISS["N06"], date(2015, 1, 1))], d0, valid_to=date(2026, 7, 3))
    put(con, "registry", [registry(MISS["N06"], date(2015, 1, 1), status="注销", status_date=date(2026, 7, 1))], date(2026, 7, 3))
    put(con, "dishonest_debtors", [
        dict(case_no="C1", uscc=HIT["N01"], subject_type="legal_rep", person_id="x", listed_on=date(2025, 1, 1)),
        dict(case_no="C2", uscc=MISS["N01"], subject_type="firm", listed_on=date(2024, 1, 1), removed_on=date(2025, 1, 1)),
    ], date(2025, 2, 2))
    put(con, "tax_violations", [dict(case_no="T1", uscc=HIT["N02"], listed_on=date(2026, 3, 1))], date(2026, 3, 15))
    put(con, "tax_violations", [dict(case_no="T2", uscc=MISS["N02"], listed_on=date(2026, 6, 19))], date(2026, 7, 15))
    put(con, "tax_abnormal", [dict(case_no="A1", uscc=HIT["N13"], listed_on=date(2026, 2, 20)),
                              dict(case_no="A2", uscc=MISS["N13"], listed_on=date(2025, 8, 20), removed_on=date(2026, 4, 2))],
        date(2026, 4, 15))
    put(con, "financing_platforms", [dict(platform_id="P1", uscc=HIT["N09platform"], listed_on=date(2019, 3, 1)),
                                     dict(platform_id="P2", uscc=MISS["N09platform"], listed_on=date(2019, 3, 1),
                                          removed_on=date(2026, 1, 5))], date(2026, 1, 25))
    put(con, "tax_annual", [
        dict(uscc=HIT["N03"], fiscal_year=2025, rd_expense_fen=0, rd_super_deduction_fen=0, total_assets_fen=1,
             total_liabilities_fen=0, credit_grade="D"),
        dict(uscc=MISS["N03"], fiscal_year=2024, rd_expense_fen=0, rd_super_deduction_fen=0, total_assets_fen=1,
             total_liabilities_fen=0, credit_grade="D"),
        dict(uscc=MISS["N03"], fiscal_year=2025, rd_expense_fen=0, rd_super_deduction_fen=0, total_assets_fen=1,
             total_liabilities_fen=0, credit_grade="B"),
    ], date(2026, 6, 10))
    put(con, "market_registers", [
        dict(case_no="M1", uscc=HIT["N04"], register="serious_illegal", reason="r", listed_on=date(2025, 5, 1)),
        dict(case_no="M2", uscc=HIT["N05"], register="abnormal_operation", reason="r", listed_on=date(2025, 6, 1)),
        dict(case_no="M3", uscc=MISS["N05"], register="abnormal_operation", reason="r", listed_on=date(2025, 6, 1),
             removed_on=date(2026, 6, 20)),  # removed on the day: no longer listed as of that day
    ], date(2026, 6, 20))
    loans = [dict(loan_id=f"L{i}", application_id="A", uscc=f, bank_id="B01", disbursed_on=date(2025, 12, 1),
                  amount_fen=100, term_months=12, rate_bp=400, maturity_on=date(2026, 11, 30))
             for i, f in enumerate([HIT["N07"], MISS["N07"]])]
    put(con, "loans", loans, date(2025, 12, 6))
    for period, dpd_hit, dpd_miss in (("2026-04", 0, 30), ("2026-05", 30, 0)):
        put(con, "loan_status", [
            dict(loan_id="L0", period=period, principal_repaid_fen=0, interest_paid_fen=0, outstanding_fen=100, dpd=dpd_hit,
                 classification="关注" if dpd_hit else "正常"),
            dict(loan_id="L1", period=period, principal_repaid_fen=0, interest_paid_fen=0, outstanding_fen=100,
                 dpd=dpd_miss, classification="关注" if dpd_miss else "正常")], date(int(period[:4]), int(period[5:]) + 1, 6))
    monthly(con, "social_insurance", HIT["N08"], ["2026-05"], lambda p: dict(
        insured_headcount=5, technical_staff=0, contribution_fen=0, arrears_months=4), 12)
    monthly(con, "social_insurance", MISS["N08"], ["2026-05"], lambda p: dict(
        insured_headcount=5, technical_staff=0, contribution_fen=0, arrears_months=3), 12)
    monthly(con, "tax_monthly", HIT["N08tax"], ["2026-02", "2026-03", "2026-04", "2026-05"], lambda p: dict(
        revenue_fen=1, vat_fen=0, income_tax_fen=0, tax_arrears_fen=500), 15)
    monthly(con, "tax_monthly", MISS["N08"], ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"], lambda p: dict(
        revenue_fen=1, vat_fen=0, income_tax_fen=0, tax_arrears_fen=0 if p == "2026-03" else 500), 15)
    put(con, "penalties", [
        dict(decision_no="F1", uscc=HIT["N10"], decided_on=date(2024, 1, 1), severity="major_safety", reason="r", amount_fen=1),
        dict(decision_no="F2", uscc=MISS["N10"], decided_on=date(2023, 6, 1), severity="major_environment", reason="r",
             amount_fen=1),
        dict(decision_no="F3", uscc=MISS["N10"], decided_on=date(2025, 6, 1), severity="general", reason="r", amount_fen=1),
    ], date(2025, 7, 3))
    build_indicators(con, AS_OF)
    build_scores(con, AS_OF, CAT)
    yield con
    con.close()


EXPECTED_HITS = {  # rule id, source, evidence date
    "N01": ("N01", "dishonest_debtors", date(2025, 1, 1)),
    "N02": ("N02", "tax_violations", date(2026, 3, 1)),
    "N03": ("N03", "tax_annual", date(2026, 6, 10)),
    "N04": ("N04", "market_registers", date(2025, 5, 1)),
    "N05": ("N05", "market_registers", date(2025, 6, 1)),
    "N06": ("N06", "registry", date(2026, 1, 1)),
    "N07": ("N07", "loan_status", date(2026, 5, 31)),
    "N08": ("N08", "social_insurance", date(2026, 5, 31)),
    "N08tax": ("N08", "tax_monthly", date(2026, 5, 31)),
    "N09": ("N09", "registry", date(2024, 1, 3)),
    "N10": ("N10", "penalties", date(2024, 1, 1)),
    "N11": ("N11", "registry", date(2024, 1, 3)),
    "N12": ("N12", "registry", date(2024, 1, 3)),
    "N09division": ("N09", "registry", date(2024, 1, 3)),
    "N09platform": ("N09", "financing_platforms", date(2019, 3, 1)),
    "N13": ("N13", "tax_abnormal", date(2026, 2, 20)),
}


def test_every_negative_list_rule_hits_with_source_and_evidence(neg_store):
    hits = neg_store.execute("SELECT uscc, rule_id, source, evidence_date FROM scores.negative_hits WHERE as_of = ?",
                             [AS_OF]).fetchall()
    by_firm = {}
    for firm, *hit in hits:
        by_firm.setdefault(firm, []).append(tuple(hit))
    for case, expected in EXPECTED_HITS.items():
        assert by_firm.get(HIT[case]) == [expected], case
    assert {r.id for r in CAT.negative_rules} == {v[0] for v in EXPECTED_HITS.values()}


def test_near_misses_do_not_hit(neg_store):
    hit_firms = {f for (f,) in neg_store.execute("SELECT DISTINCT uscc FROM scores.negative_hits").fetchall()}
    assert {case: f for case, f in MISS.items() if f in hit_firms} == {}


def test_a_hit_excludes_the_firm_whatever_its_score(neg_store):
    rows = neg_store.execute("SELECT uscc, excluded, hits, hit_rules, total FROM scores.commercial_value WHERE as_of = ?",
                             [AS_OF]).fetchall()
    verdict = {f: (excluded, rules) for f, excluded, _, rules, _ in rows}
    for case, firm in HIT.items():
        assert verdict[firm] == (True, EXPECTED_HITS[case][0]), case
    for firm in MISS.values():
        assert verdict[firm] == (False, "")
    results = dict(check_scores(neg_store, AS_OF, CAT))
    assert results["exclusions_have_hits"].passed


def test_a_disabled_rule_records_nothing(neg_store):
    from dataclasses import replace
    cat = replace(CAT, negative_rules=tuple(replace(r, enabled=r.id != "N09") for r in CAT.negative_rules))
    build_scores(neg_store, AS_OF, cat)
    try:
        assert neg_store.execute("SELECT count(*) FROM scores.negative_hits WHERE rule_id = 'N09'").fetchone()[0] == 0
        assert neg_store.execute("SELECT excluded FROM scores.commercial_value WHERE uscc = ?", [HIT["N09"]]).fetchone() == (False,)
    finally:
        build_scores(neg_store, AS_OF, CAT)


@pytest.mark.parametrize("as_of", [date(2026, 11, 28), date(2026, 5, 11)])
def test_sql_agrees_with_an_independent_pandas_implementation(faulty_store, as_of):
    """On a simulated universe with faults and redelivered files, today and half a year back."""
    from benchmarks.pandas_indicators import compare, pandas_indicators

    con = faulty_store[0]
    build_indicators(con, as_of)
    sql = con.execute("SELECT * EXCLUDE (as_of, snapshot_id) FROM features.indicators WHERE as_of = ?", [as_of]).df()
    assert len(sql) > 1000
    assert compare(sql, pandas_indicators(con, as_of)) == {"firms_only_in_one": 0, **{k: 0 for k in CAT.total_weights()}}

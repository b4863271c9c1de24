"""Eligibility by hand: every condition type, the hard gates, limit capping and rounding, pricing
bands and floors, the product catalogue's validation, and the firm's view."""

import re
from datetime import date

import duckdb
import pandas as pd
import pytest

from lending.eligibility import eligibility_sql, firm_base_sql
from lending.products import ProductError, load_products

PROGRAMME = {"max_amount_rmb": 3_000_000, "max_amount_zhuanjingtexin_rmb": 10_000_000, "limit_rounding_rmb": 10_000}
D = date(2026, 11, 28)
OPEN_LOANS = "STRUCT(maturity_on DATE, bank_id VARCHAR, outstanding_fen BIGINT, classification VARCHAR, dpd INTEGER)[]"


def firm(**over) -> dict:
    """A firm that meets every condition of the product below, with PD 0.015."""
    base = dict(uscc="F", as_of=D, grade="A", grade_rank=2, total=700.0, pd=0.015, model_version="pd-x",
                years_in_operation=5.0, industry="C", district_code="500112", size_class="小型",
                revenue_12m=20_000_000.0, tax_paid_12m=400_000.0, innovation_status="high_tech", catalogue_version=1,
                catalogue_hash="h", snapshot_id="s", authorised=True, gates=[], gate_rules=[], gate_reasons="",
                prior_loans=0, open_loans=[],
                loans_outstanding_fen=0, invention_patents=0, utility_models=0, valid_trademarks=0, receivables_fen=0)
    return base | over


PRODUCT = dict(product_id="P1", bank_id="B01", product_name="测试贷", min_grade="BBB", min_grade_rank=3, min_score=500.0,
               max_pd=0.05, min_years=2.0, min_revenue_rmb=1_000_000.0, min_tax_paid_rmb=50_000.0, industries=["C", "D"],
               exclude_industries=None, districts=["500112", "500105"], required_status=["high_tech", "zhuanjingtexin"],
               max_amount_fen=2_000_000 * 100, term_months=12, base_bp=400, floor_bp=380,
               band_max_pd=[0.01, 0.02, 0.05], band_premium_bp=[-30, 20, 80], revenue_share=0.1, tax_multiple=10.0,
               kind="credit", renewal_window_days=None, ip_invention_fen=None, ip_utility_fen=None, ip_trademark_fen=None,
               ip_cap_fen=None, receivables_share=None)


def decide(firms: list[dict], products: list[dict] | None = None, programme: dict = PROGRAMME) -> pd.DataFrame:
    con = duckdb.connect()
    f = pd.DataFrame(firms)
    p = pd.DataFrame(products or [PRODUCT])
    for col in ("industries", "exclude_industries", "districts", "required_status"):
        p[col] = p[col].astype(object)
    con.register("f", f)
    con.register("p", p)
    con.execute(f"CREATE TABLE firms AS SELECT * REPLACE (CAST(gates AS VARCHAR[]) AS gates, "
                "CAST(gate_rules AS VARCHAR[]) AS gate_rules, "
                f"CAST(open_loans AS {OPEN_LOANS}) AS open_loans) FROM f")
    con.execute("""CREATE TABLE products AS SELECT * REPLACE (CAST(renewal_window_days AS INTEGER) AS renewal_window_days,
                   CAST(ip_invention_fen AS BIGINT) AS ip_invention_fen, CAST(ip_utility_fen AS BIGINT) AS ip_utility_fen,
                   CAST(ip_trademark_fen AS BIGINT) AS ip_trademark_fen, CAST(ip_cap_fen AS BIGINT) AS ip_cap_fen,
                   CAST(receivables_share AS DOUBLE) AS receivables_share, CAST(industries AS VARCHAR[]) AS industries,
                   CAST(exclude_industries AS VARCHAR[]) AS exclude_industries, CAST(districts AS VARCHAR[]) AS districts,
                   CAST(required_status AS VARCHAR[]) AS required_status) FROM p""")
    return con.execute(f"SELECT * FROM ({eligibility_sql('firms', 'products', programme)}) ORDER BY uscc, product_id").df()


def lacks(row) -> dict:
    return {s["condition"]: (s["value"], s["required"]) for s in row["shortfalls"]}


def test_a_firm_meeting_every_condition_gets_limit_and_price():
    r = decide([firm()]).iloc[0]
    assert r["eligible"] and list(r["gates"]) == [] and list(r["shortfalls"]) == [] and r["match_degree"] == 1.0
    # min(10 % of 20,000,000, 10 x 400,000) = 2,000,000, x (0.5 + 700/1000) = 2,400,000 -> product cap 2,000,000
    assert r["limit_fen"] == 2_000_000 * 100
    assert r["rate_bp"] == 400 + 20  # PD 0.015 falls in the (0.01, 0.02] band


@pytest.mark.parametrize("over, condition, value, required", [
    ({"grade": "BB", "grade_rank": 4}, "min_grade", "BB", "BBB or better"),
    ({"total": 480.0}, "min_score", "480.0", ">= 500.0"),
    ({"pd": 0.06}, "max_pd", "0.06", "<= 0.05"),
    ({"pd": None}, "max_pd", "no data", "<= 0.05"),
    ({"years_in_operation": 1.5}, "min_years", "1.5", ">= 2.0"),
    ({"revenue_12m": 900_000.0}, "min_revenue_rmb", "900000.0", ">= 1000000.0"),
    ({"tax_paid_12m": 40_000.0}, "min_tax_paid_rmb", "40000.0", ">= 50000.0"),
    ({"industry": "K"}, "industries", "K", "C,D"),
    ({"district_code": "500101"}, "districts", "500101", "500112,500105"),
    ({"innovation_status": "none"}, "required_status", "none", "high_tech,zhuanjingtexin"),
])
def test_each_unmet_condition_is_a_shortfall_with_value_and_requirement(over, condition, value, required):
    r = decide([firm(**over)]).iloc[0]
    assert not r["eligible"] and r["limit_fen"] == 0
    assert lacks(r)[condition] == (value, required)
    assert r["match_degree"] == round(1 - len(r["shortfalls"]) / 11, 4)  # 9 conditions apply, + limit + price


def test_excluded_industries():
    p = PRODUCT | {"industries": None, "exclude_industries": ["K", "E"]}
    out = decide([firm(uscc="A", industry="K"), firm(uscc="B", industry="C")], [p])
    assert lacks(out.iloc[0])["exclude_industries"] == ("K", "not K,E") and out.iloc[1]["eligible"]


def test_hard_gates_refuse_every_product_and_are_recorded_as_such():
    out = decide([firm(gates=["negative_list", "no_authorisation"], authorised=False)])
    r = out.iloc[0]
    assert not r["eligible"] and list(r["gates"]) == ["negative_list", "no_authorisation"] and r["limit_fen"] == 0


def test_a_firm_behind_a_gate_matches_no_product_at_all():
    """A vetoed firm meeting every condition of the product showed a match degree of 100 %: a gate no
    condition can open makes it 0, while a firm one condition short keeps its partial match."""
    vetoed = firm(uscc="A", gates=["negative_list"], gate_rules=["N13"], gate_reasons="negative_list: N13 税务非正常户")
    out = decide([vetoed, firm(uscc="B", total=480.0)])
    assert out["match_degree"].tolist() == [0.0, round(1 - 1 / 11, 4)]
    assert list(out.iloc[0]["gate_rules"]) == ["N13"] and out.iloc[0]["gate_reasons"] == "negative_list: N13 税务非正常户"
    assert list(out.iloc[0]["shortfalls"]) == []  # it lacks no condition: the gate alone refuses it


def test_limit_takes_the_smaller_base_scales_by_score_caps_and_rounds_down():
    p = PRODUCT | {"max_amount_fen": 10_000_000 * 100}
    rows = decide([
        # revenue base 10 % x 4,567,890 = 456,789 < tax 10 x 100,000; x (0.5 + 0.5) = 456,789 -> 450,000
        firm(uscc="A", revenue_12m=4_567_890.0, tax_paid_12m=100_000.0, total=500.0),
        # base 5,000,000 x 1.5 (score 1000) = 7,500,000 -> programme cap 3,000,000 for a firm not 专精特新
        firm(uscc="B", revenue_12m=50_000_000.0, tax_paid_12m=5_000_000.0, total=1000.0),
        # the same firm, 专精特新: the programme allows 10,000,000, so 7,500,000 stands
        firm(uscc="C", revenue_12m=50_000_000.0, tax_paid_12m=5_000_000.0, total=1000.0, innovation_status="zhuanjingtexin"),
        # a limit below one rounding unit is a shortfall, not a loan of nothing
        firm(uscc="D", revenue_12m=1_000_000.0, tax_paid_12m=500.0, total=500.0),
    ], [p])
    assert rows["limit_fen"].tolist() == [450_000 * 100, 3_000_000 * 100, 7_500_000 * 100, 0]
    assert lacks(rows.iloc[3])["limit"] == ("0", ">= 10000")


def test_pricing_bands_and_floor():
    pds = {"A": 0.005, "B": 0.01, "C": 0.0100001, "D": 0.05, "E": 0.0500001, "F": None}
    out = decide([firm(uscc=k, pd=v) for k, v in pds.items()], [PRODUCT | {"max_pd": None}])
    # 400 - 30 = 370 is below the floor of 380; band edges are inclusive; beyond the last band: no price
    assert out["rate_bp"].tolist()[:4] == [380, 380, 420, 480]
    for i in (4, 5):  # no price above the last band, nor without a PD (before the first model)
        assert pd.isna(out["rate_bp"].iloc[i]) and "pricing" in lacks(out.iloc[i]) and not out.iloc[i]["eligible"]


def test_gates_from_the_store_authorisation_sme_and_region(tmp_path):
    from valuecredit.store import connect
    con = connect(tmp_path / "g.duckdb")
    con.execute("CREATE SCHEMA IF NOT EXISTS scores; CREATE SCHEMA IF NOT EXISTS features")
    firms = ["A", "B", "C", "D", "E"]
    con.execute("CREATE TABLE scores.commercial_value AS SELECT unnest(?) AS uscc, DATE '2026-11-28' AS as_of, 'A' AS grade, "
                "700.0 AS total, 1 AS catalogue_version, 'h' AS catalogue_hash, 's' AS snapshot_id", [firms])
    con.execute("CREATE TABLE features.indicators AS SELECT uscc, as_of, 5.0 AS years_in_operation, 1e7 AS revenue_12m, "
                "1e5 AS tax_paid_12m, 'none' AS innovation_status FROM scores.commercial_value")
    con.execute("CREATE TABLE scores.pd (uscc VARCHAR, as_of DATE, pd DOUBLE, model_version VARCHAR)")
    con.execute("CREATE TABLE scores.negative_hits AS SELECT * FROM (VALUES ('C', DATE '2026-11-28', 'N11', 'not_sme'), "
                "('D', DATE '2026-11-28', 'N12', 'outside_region'), ('E', DATE '2026-11-28', 'N13', 'tax_abnormal'), "
                "('E', DATE '2026-11-28', 'N01', 'dishonest_debtor'), ('E', DATE '2026-11-28', 'N01', 'dishonest_debtor'), "
                "('E', DATE '2026-11-28', 'N12', 'outside_region')) t(uscc, as_of, rule_id, rule)")
    for src, cols in (("registry", "uscc VARCHAR, industry VARCHAR, district_code VARCHAR, size_class VARCHAR"),
                      ("authorisations", "uscc VARCHAR, granted_on DATE, expires_on DATE, revoked_on DATE")):
        con.execute(f"DROP TABLE IF EXISTS raw.{src}")
        con.execute(f"CREATE TABLE raw.{src} ({cols}, _delivered_on DATE, _valid_to DATE)")
    con.execute("INSERT INTO raw.registry SELECT unnest(?), 'C', '500112', '小型', DATE '2026-01-03', NULL", [firms])
    con.execute("""INSERT INTO raw.authorisations VALUES
        ('A', '2026-01-01', '2027-01-01', NULL, '2026-01-01', NULL),     -- valid
        ('B', '2025-01-01', '2026-01-01', NULL, '2025-01-01', NULL),     -- expired
        ('B', '2026-03-01', '2027-03-01', '2026-10-01', '2026-03-01', NULL),  -- revoked before the date
        ('C', '2026-01-01', '2027-01-01', NULL, '2026-01-01', NULL),
        ('D', '2026-01-01', '2027-01-01', '2026-12-01', '2026-01-01', NULL),  -- revoked only later: still valid
        ('E', '2026-12-01', '2027-12-01', NULL, '2026-12-01', NULL)       -- delivered after the date""")
    rows = con.execute(f"SELECT uscc, gates, gate_rules, gate_reasons FROM ({firm_base_sql(D)}) ORDER BY uscc").fetchall()
    assert {u: g for u, g, _, _ in rows} == {"A": [], "B": ["no_authorisation"], "C": ["not_sme"], "D": ["outside_region"],
                                             "E": ["negative_list", "no_authorisation", "outside_region"]}
    # every gate names the rules that closed it, each once, by id and name
    assert {u: (r, text) for u, _, r, text in rows} == {
        "A": ([], ""), "B": ([], "no_authorisation"), "C": (["N11"], "not_sme: N11 非中小企业"),
        "D": (["N12"], "outside_region: N12 非本市注册"),
        "E": (["N01", "N12", "N13"],
              "negative_list: N01 失信被执行人, N13 税务非正常户; no_authorisation; outside_region: N12 非本市注册")}


def test_the_product_catalogue_is_validated_naming_product_and_field(tmp_path):
    good = load_products()
    assert len(good.products) == 70 and len(good.banks) == 17
    assert {p["bank_id"] for p in good.products} == set(good.banks)
    text = (good.path).read_text(encoding="utf-8")
    cases = [
        (text.replace("min_grade: BB\n", "min_grade: AAAA\n", 1), "products[0].conditions.min_grade: must be one of AAA"),
        (text.replace("max_pd: 0.064", "max_pd: 1.5", 1), "products[0].conditions.max_pd: must be at least 0 and at most 1, found 1.5"),
        (text.replace("max_amount_rmb: 3000000\n    term_months: 12", "max_amount_rmb: 30000000\n    term_months: 12", 1),
         "conditions.max_amount_rmb: 30,000,000 is above the programme's cap"),
        (text.replace("base_bp: 385", "base_bp: 3.85", 1), "products[0].pricing.base_bp: expected a whole number, found 3.85"),
        (text.replace("product_id: B01-P2", "product_id: B01-P1", 1), "products[1].product_id: 'B01-P1' used twice"),
        (text.replace("min_years: 1\n", "min_yeers: 1\n", 1), "conditions.min_yeers: not a known key"),
        (text.replace("- bank_id: B04\n", "- bank_id: b03\n", 1), "banks[3].bank_id: 'b03' repeats 'B03'"),
        (text.replace("- bank_id: B04\n", "- bank_id: B03\n", 1), "banks[3].bank_id: 'B03' repeats 'B03'"),
        (text.replace("- bank_id: B04\n", "- bank_id: Programme\n", 1), "banks[3].bank_id: 'Programme' is reserved"),
    ]
    for i, (bad, message) in enumerate(cases):
        path = tmp_path / f"p{i}.yaml"
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(ProductError, match=re.escape(message)):
            load_products(path)

"""The negative list's departments end to end: the tax bureau's 非正常户 list (firms that stopped filing),
the finance bureau's list of local-government financing platforms and the register's industry division
(两高一剩) are simulated with their truth, delivered under contracts, and veto the firm by rule; a vetoed
firm matches no product and every gate names the rule that closed it, in the store, the `match` command
and the banks' files."""

import io
import shutil

import duckdb
import pandas as pd
import pytest
from rich.console import Console

from data_contracts.contracts import SECTION_DIVISIONS
from lending.products import load_products
from simulate.landing import add_months
from simulate.universe import UNFILED_MONTHS_TO_LIST
from simulate.vocabulary import PLATFORM_SECTIONS
from tests.conftest import BUSINESS_DATE
from valuecredit.store import connect

D = BUSINESS_DATE


def _source(landing, source: str, **read) -> pd.DataFrame:
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str)
    files = manifest[manifest.source == source].file
    reader = pd.read_parquet if source == "tax_monthly" else lambda p: pd.read_csv(p, dtype=str, **read)
    return pd.concat([reader(landing / f) for f in files], ignore_index=True)


def test_firms_that_stop_filing_are_listed_and_the_truth_says_so(clean_landing):
    listed = _source(clean_landing, "tax_abnormal").drop_duplicates("case_no")  # listed, then again when removed
    tax = _source(clean_landing, "tax_monthly")
    truth = pd.read_parquet(clean_landing / "_truth" / "firms.parquet")
    assert len(listed) >= 10
    filed = set(zip(tax.uscc, tax.period))
    for r in listed.itertuples():
        month = r.listed_on[:7]
        # no return for any of the months before the listing: the bureau lists a firm that stopped filing
        gap = [add_months(month, -m) for m in range(1, UNFILED_MONTHS_TO_LIST + 1)]
        assert not any((r.uscc, p) in filed for p in gap if p >= tax.period.min()), (r.uscc, month)
    first = listed.groupby("uscc").listed_on.min()
    got = truth.dropna(subset=["tax_abnormal_from"]).set_index("uscc").tax_abnormal_from.astype(str)
    assert got.sort_index().to_dict() == first.sort_index().to_dict()


def test_platforms_and_divisions_follow_the_register(clean_landing):
    registry = _source(clean_landing, "registry", encoding="gbk").drop_duplicates("uscc", keep="last")
    assert all(SECTION_DIVISIONS[s][0] <= int(d) <= SECTION_DIVISIONS[s][1]
               for s, d in zip(registry.industry, registry.industry_division))
    assert registry.industry_division.isin(["25", "26", "30", "31", "32", "44"]).sum() >= 10
    platforms = _source(clean_landing, "financing_platforms")
    truth = pd.read_parquet(clean_landing / "_truth" / "firms.parquet")
    assert set(platforms.uscc) == set(truth.uscc[truth.financing_platform]) and len(platforms.uscc.unique()) >= 1
    assert registry.set_index("uscc").loc[platforms.uscc, "industry"].isin(PLATFORM_SECTIONS).all()


@pytest.fixture(scope="module")
def night(clean_store, tmp_path_factory):
    """The clean landing ingested, scored and decided for every product on the business date."""
    from lending.eligibility import build_eligibility
    from lending.products import load_products
    from scoring.catalogue import load_catalogue
    from scoring.score import build_indicators, build_scores

    db = tmp_path_factory.mktemp("negative_night") / "n.duckdb"
    shutil.copy(clean_store, db)
    con = connect(db)
    build_indicators(con, D)
    build_scores(con, D, load_catalogue())
    build_eligibility(con, D, load_products())
    con.close()
    return db


def _listed_on(con, source: str) -> set[str]:
    return {u for (u,) in con.execute(f"""SELECT DISTINCT uscc FROM staging.{source}
                                          WHERE listed_on <= ? AND (removed_on IS NULL OR removed_on > ?)""",
                                      [D, D]).fetchall()}


def test_listed_firms_are_vetoed_by_the_rule_that_lists_them(night):
    with duckdb.connect(str(night), read_only=True) as con:
        abnormal, platforms = _listed_on(con, "tax_abnormal"), _listed_on(con, "financing_platforms")
        assert abnormal and platforms
        hits = con.execute("SELECT uscc, rule_id, source FROM scores.negative_hits WHERE as_of = ?", [D]).fetchall()
        assert {u for u, rule, _ in hits if rule == "N13"} == abnormal
        assert {u for u, rule, src in hits if rule == "N09" and src == "financing_platforms"} == platforms
        heavy = {u for (u,) in con.execute("SELECT uscc FROM staging.registry WHERE industry_division IN "
                                           "('25', '26', '30', '31', '32', '44')").fetchall()}
        assert heavy and heavy <= {u for u, rule, src in hits if rule == "N09" and src == "registry"}
        excluded = dict(con.execute("SELECT uscc, excluded FROM scores.commercial_value WHERE as_of = ?", [D]).fetchall())
        assert all(excluded[u] for u in abnormal | platforms | heavy if u in excluded)


def test_a_vetoed_firm_matches_nothing_and_its_gate_names_the_rule(night):
    with duckdb.connect(str(night), read_only=True) as con:
        abnormal = sorted(_listed_on(con, "tax_abnormal"))
        rows = con.execute("""SELECT uscc, gates, gate_rules, gate_reasons, max(match_degree) AS best, bool_or(eligible)
                              FROM decisions.eligibility WHERE as_of = ? AND uscc IN (SELECT unnest(?))
                              GROUP BY ALL""", [D, abnormal]).fetchall()
        assert len(rows) == len(abnormal)
        for uscc, gates, rules, reasons, best, eligible in rows:
            assert "negative_list" in gates and "N13" in rules and best == 0.0 and not eligible, uscc
            assert "N13 税务非正常户" in reasons.split("negative_list: ")[1].split(";")[0], reasons
        # a firm behind no gate keeps its partial match
        assert con.execute("SELECT max(match_degree) FROM decisions.eligibility WHERE as_of = ? AND len(gates) = 0 "
                           "AND NOT eligible", [D]).fetchone()[0] > 0.5
        # the published rows carry the gate as people read it, beside the unchanged machine column
        from lending.publish import published_rows_sql
        pub = con.execute(f"SELECT uscc, gates, gate_reasons, match_degree FROM ({published_rows_sql(D)}) "
                          "WHERE uscc IN (SELECT unnest(?))", [abnormal]).df()
    assert len(pub) and (pub.match_degree == 0).all() and pub.gates.str.contains("negative_list").all()
    assert pub.gate_reasons.str.contains("N13 税务非正常户").all()


def test_match_shows_each_gate_with_its_rule(night, monkeypatch):
    import pipelines.cli as cli

    with duckdb.connect(str(night), read_only=True) as con:
        firm = sorted(_listed_on(con, "tax_abnormal"))[0]
    out = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=out, width=1000))
    assert cli.main(["match", "--firm", firm, "--date", D.isoformat(), "--db", str(night)]) == 0
    text = out.getvalue().splitlines()
    gates = [line for line in text if "gate:" in line]  # what each product lacks, on the line under it
    assert len(gates) == len(load_products().products) and all("gate: negative_list: " in line and "N13 税务非正常户" in line for line in gates), text
    products = [text[i - 1] for i, line in enumerate(text) if "gate:" in line]
    cells = [[c.strip() for c in line.strip("│ ").split("│")] for line in products]
    assert all(c[-4:] == ["no", "", "", "0%"] for c in cells), products[:3]  # eligible, limit, rate, match


def test_the_gate_names_come_in_one_order(night):
    """Byte-reproducible: the rules of a gate come sorted, whatever order the hits were stored in."""
    with duckdb.connect(str(night), read_only=True) as con:
        a = con.execute("SELECT uscc, gate_rules, gate_reasons FROM decisions.eligibility_firms WHERE as_of = ? "
                        "AND len(gate_rules) > 1 ORDER BY uscc", [D]).fetchall()
    assert a and all(rules == sorted(rules) for _, rules, _ in a)

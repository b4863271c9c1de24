"""A week of nights, each run as the operator runs it (`run_nightly`), on the 800-firm universe with
champions trained on the loan book's (its own loan book is too short to train on):
(1) no PD model yet, (2) the first champion, (3) another champion (trained as of an earlier date: any
other model does), (4) a late file, (5) a
corrected file, (6) an authorisation revoked, (7) a firm newly on a negative list. Every night
succeeds, shows its event, and every incremental night gives the tables of a full night."""

import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from data_contracts.contracts import contract_for
from lending.delta import rebuild
from lending.eligibility import build_eligibility
from lending.products import load_products
from lending.publish import publish
from models.nightly import load_reason_codes, pinned_model, score_pd
from models.registry import champion, last_decision, record_decision
from pipelines.run import run_nightly
from scoring.catalogue import load_catalogue
from scoring.score import build_indicators, build_scores
from simulate.landing import deliver
from tests.conftest import redeliver, trained_version
from tests.lending.test_access import bank_table, in_publication, revoke
from tests.night_tables import TABLES, assert_same_tables
from valuecredit.store import connect

pytestmark = pytest.mark.slow

DAYS = [date(2026, 11, 21) + timedelta(days=i) for i in range(7)]  # one month: nights may be incremental
OUTCOMES = ("loan_status", "loan_recoveries")  # what a PD model learns from
PD_TABLES = {"features.pd_inputs", "scores.pd", "scores.explanations", "scores.pd_importance", "scores.pd_stability"}
NOT_AFTER = "not computed for 2026-11-21 after its indicators (none then, or its night stopped before)"


class Week:
    """The store and landing zone the week's nights run on; what each night left, by date."""

    def __init__(self, work, landing):
        self.work, self.landing = work, landing
        self.store = work / "store"
        self.db, self.registry = self.store / "night.duckdb", self.store / "models"
        self.full = work / "full_publications"  # each night published whole, by date
        self.summaries, self.plans, self.compared = {}, {}, []

    def read(self, sql: str, params=()) -> pd.DataFrame:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql, list(params)).df()
        finally:
            con.close()

    def pin(self, trained: Path, day: date) -> str:
        """The model a registry's training on the loan book registered, copied into the week's and pinned,
        as `model train` would before the night: its promotion recorded in the week's decision log."""
        version = trained_version(trained)
        shutil.copytree(trained / "models" / version, self.registry / version)
        record_decision(self.registry, last_decision(trained / "models") | {
            "champion": champion(self.registry), "decided_on": day.isoformat(), "promoted": True,
            "reason": "pinned for the week's nights"})
        assert champion(self.registry) == version
        return version

    def night(self, day: date) -> None:
        summary = run_nightly(day, self.landing, self.db)
        assert summary.succeeded, (day, summary.errors, summary.failed_checks, summary.blocked)
        self.summaries[day] = summary
        con = duckdb.connect(str(self.db), read_only=True)
        plan = con.execute("SELECT * FROM meta.night_plans WHERE as_of = ?", [day])
        self.plans[day] = dict(zip([c[0] for c in plan.description], plan.fetchone()))
        con.close()
        # the same date again on a copy of the store as the night left it: published whole (a fresh
        # folder's first publication), the reference of what the banks' change files must give
        reference = self.work / "reference.duckdb"
        shutil.copy(self.db, reference)
        con = connect(reference)
        publish(con, day, load_products(), self.full / day.isoformat())
        con.close()
        if self.plans[day]["full_reason"]:
            reference.unlink()
            return  # a full night is its own reference
        # and every firm computed again
        con, cat = connect(reference), load_catalogue()
        build_indicators(con, day, "the week's reference")
        build_scores(con, day, cat)
        has_model = champion(self.registry) is not None
        if has_model:
            score_pd(con, day, cat, pinned_model(self.registry), load_reason_codes())
        build_eligibility(con, day, load_products())
        con.close()
        assert_same_tables(self.db, reference, day, [t for t in TABLES if has_model or t not in PD_TABLES])
        reference.unlink()
        self.compared.append(day)


@pytest.fixture(scope="module")
def week(clean_landing, trained_on, tmp_path_factory):
    return run_week(clean_landing, trained_on, tmp_path_factory.mktemp("week"))


def run_week(landing0, trained_on, work) -> tuple[Week, dict]:
    """The seven nights on a copy of the landing zone `landing0`, each with its event; the champions
    from `trained_on(date)` (the loan book's, conftest.py)."""
    shutil.copytree(landing0, work / "landing")
    w = Week(work, work / "landing")
    d1, d2, d3, d4, d5, d6, d7 = DAYS

    # (1) the banks' loan statuses and recoveries reach the programme only on the second night: no
    # loan's outcome is known, nothing to train a PD model on
    manifest = pd.read_csv(w.landing / "manifest.csv", dtype=str)
    manifest.loc[manifest.source.isin(OUTCOMES), "delivered_on"] = d2.isoformat()
    manifest.to_csv(w.landing / "manifest.csv", index=False)
    w.night(d1)

    # (2) they arrive, and a first champion is registered before the night
    first = w.pin(trained_on(date(2026, 11, 28)), d2)
    w.night(d2)
    assert [(w.summaries[d1].table_rows.get(f"staging.{s}", 0), w.summaries[d2].table_rows[f"staging.{s}"] > 0)
            for s in OUTCOMES] == [(0, True)] * len(OUTCOMES)

    # (3) another model becomes the champion
    second = w.pin(trained_on(date(2026, 11, 5), over=date(2026, 11, 28)), d3)
    w.night(d3)

    # (4) a file delivered on the second night reaches the landing zone only now: three new awards
    late = w.read("""SELECT * EXCLUDE (_file, _delivered_on) FROM staging.subsidies
                     QUALIFY row_number() OVER (PARTITION BY uscc ORDER BY award_id) = 1 ORDER BY uscc LIMIT 3""")
    late = late.assign(award_id=[f"LATE-{i}" for i in range(3)], awarded_on=d2 - timedelta(days=10))
    deliver(w.landing, contract_for("subsidies"), "finance/subsidies/subsidies_week_late.csv", "2026-11", late, d2)
    w.night(d4)

    # (5) the tax bureau redelivers its latest annual file: one firm's liabilities corrected
    file = manifest[manifest.source == "tax_annual"].sort_values("delivered_on").file.iloc[-1]
    annual = pd.read_csv(w.landing / file, dtype=str, keep_default_na=False)
    year = annual.fiscal_year.max()
    known = set(w.read("SELECT uscc FROM features.indicators WHERE as_of = ? AND debt_ratio > 0", [d4]).uscc)
    row = annual.index[(annual.fiscal_year == year) & annual.uscc.isin(known)
                       & (annual.total_assets_fen.astype(int) > 10)][0]
    corrected = (annual.uscc[row], int(annual.total_assets_fen[row]) // 7)
    annual.loc[row, "total_liabilities_fen"] = str(corrected[1])
    redeliver(w.landing, file, annual, d5)
    w.night(d5)

    # (6) a firm published to several banks revokes its authorisation
    published = in_publication(w.store, d5)
    revoked = next(f for f in sorted(set().union(*published.values()))
                   if sum(f in firms for firms in published.values()) >= 2)
    revoke(w.landing, revoked, d6, d6)
    w.night(d6)

    # (7) a firm eligible on the sixth night gets a major safety penalty
    vetoed = w.read("""SELECT uscc FROM decisions.eligibility_pairs WHERE as_of = ? AND eligible
                       ORDER BY uscc LIMIT 1""", [d6]).uscc[0]
    penalty = w.read("SELECT * EXCLUDE (_file, _delivered_on) FROM staging.penalties ORDER BY ALL LIMIT 1")
    penalty = penalty.assign(uscc=vetoed, decision_no="CQ-WEEK-1", decided_on=d7 - timedelta(days=1),
                             severity="major_safety")
    deliver(w.landing, contract_for("penalties"), "market/penalties/penalties_week.csv", "2026-11", penalty, d7)
    w.night(d7)
    return w, {"first": first, "second": second, "late": late, "corrected": corrected, "revoked": revoked,
               "published": published, "vetoed": vetoed}


def test_every_night_of_the_week_succeeds_and_each_incremental_one_gives_a_full_nights_tables(week):
    w, _ = week
    assert sorted(w.summaries) == DAYS
    # the full nights: the first, and the one after the late file; every other night was compared
    assert [d for d in DAYS if w.plans[d]["full_reason"]] == [DAYS[0], DAYS[3]]
    assert w.compared == [d for d in DAYS if d not in (DAYS[0], DAYS[3])]
    assert all(w.plans[d]["previous"] == d - timedelta(days=1) for d in DAYS[1:])
    # a night with a few deliveries computes a small share of the firms again (not the second, when
    # every borrower's loan statuses arrive, nor the fifth, when a whole annual file is redelivered)
    assert all(w.plans[d]["changed"] < 0.1 * w.plans[d]["firms"] for d in (DAYS[2], DAYS[5], DAYS[6]))


def test_the_first_night_has_no_model_and_the_next_scores_every_firm(week):
    w, events = week
    d1, d2 = DAYS[:2]
    assert "no PD model yet" in w.summaries[d1].warnings["scores/pd"]
    assert w.plans[d1]["full_reason"] == "no earlier date computed" and w.plans[d1]["pd_made_with"] is None
    # the champion registered after the first night: its first night has no PDs to carry
    assert w.plans[d2]["pd_full_reason"] == f"pd: {NOT_AFTER}" and w.plans[d2]["hits_full_reason"] == ""
    n, versions = w.read("SELECT count(*) AS n, list(DISTINCT model_version) AS v FROM scores.pd WHERE as_of = ?",
                         [d2]).iloc[0]
    assert n == w.plans[d2]["firms"] and list(versions) == [events["first"]]


def test_a_retrained_champion_scores_every_firm_again(week):
    w, events = week
    d2, d3 = DAYS[1:3]
    assert events["second"] != events["first"]
    assert w.plans[d3]["pd_full_reason"] == (
        f"pd: {d2} was computed with {w.plans[d2]['pd_made_with']}, tonight with {w.plans[d3]['pd_made_with']}")
    assert events["second"] in w.plans[d3]["pd_made_with"]
    assert list(w.read("SELECT DISTINCT model_version FROM scores.pd WHERE as_of = ?", [d3]).model_version) == \
        [events["second"]]
    # the next night carries the new champion's PDs for the firms that did not change
    assert w.plans[DAYS[4]]["pd_full_reason"] == "" and w.summaries[DAYS[4]].succeeded


def test_a_late_file_makes_a_full_night_that_counts_it(week):
    w, events = week
    d3, d4 = DAYS[2:4]
    reason = "the data as known on 2026-11-23 changed after it was computed (a file delivered then, loaded later)"
    assert (w.plans[d4]["full_reason"], w.plans[d4]["hits_full_reason"], w.plans[d4]["pd_full_reason"]) == \
        (reason, reason, reason)
    awards = w.read("""SELECT as_of, uscc, awards_3y FROM features.indicators WHERE as_of IN (?, ?)
                       AND uscc IN (SELECT * FROM unnest(?))""", [d3, d4, list(events["late"].uscc)])
    by_day = awards.pivot(index="uscc", columns="as_of", values="awards_3y")
    assert len(by_day) == 3 and (by_day.iloc[:, 1] == by_day.iloc[:, 0] + 1).all()


def test_a_corrected_file_is_used_from_its_night(week):
    w, events = week
    d4, d5 = DAYS[3:5]
    firm, liabilities = events["corrected"]
    assert w.plans[d5]["full_reason"] == ""  # a redelivery is new data: the night stays incremental
    assert firm in set(w.read("SELECT uscc FROM meta.changed_firms WHERE as_of = ?", [d5]).uscc)
    row = w.read("SELECT * FROM staging.tax_annual WHERE uscc = ? ORDER BY fiscal_year DESC LIMIT 1", [firm]).iloc[0]
    assert row.total_liabilities_fen == liabilities
    ratios = w.read("SELECT as_of, debt_ratio FROM features.indicators WHERE uscc = ? AND as_of IN (?, ?) ORDER BY as_of",
                    [firm, d4, d5]).debt_ratio.tolist()
    assert ratios[1] == liabilities / row.total_assets_fen != ratios[0]


def test_a_revoked_authorisation_leaves_every_banks_table_that_night(week):
    w, events = week
    d6, firm = DAYS[5], events["revoked"]
    assert sum(firm in firms for firms in events["published"].values()) >= 2
    assert all(firm not in firms for firms in in_publication(w.store, d6).values())
    gates = w.read("SELECT gates FROM decisions.eligibility_firms WHERE uscc = ? AND as_of = ?", [firm, d6]).gates[0]
    assert "no_authorisation" in list(gates)


def test_a_firm_newly_on_a_negative_list_is_vetoed(week):
    w, events = week
    d6, d7, firm = DAYS[5], DAYS[6], events["vetoed"]
    assert w.plans[d7]["full_reason"] == "" and w.plans[d7]["hits_full_reason"] == ""
    score = w.read("SELECT excluded, hit_rules FROM scores.commercial_value WHERE uscc = ? AND as_of = ?",
                   [firm, d7]).iloc[0]
    assert score.excluded and "N10" in score.hit_rules.split(",")
    eligible = w.read("""SELECT as_of, count(*) FILTER (eligible) AS n FROM decisions.eligibility_pairs
                         WHERE uscc = ? AND as_of IN (?, ?) GROUP BY as_of ORDER BY as_of""", [firm, d6, d7]).n.tolist()
    assert eligible[0] > 0 and eligible[1] == 0
    gates = w.read("SELECT gates FROM decisions.eligibility_firms WHERE uscc = ? AND as_of = ?", [firm, d7]).gates[0]
    assert "negative_list" in list(gates)


def test_a_bank_loading_only_the_change_files_holds_every_nights_table(week, tmp_path):
    """Over the whole week (a model arriving, a retrain, a late file, a correction, a revocation, a
    veto), every bank's first table, or its last full one (the Monday's), and each night's change file
    give each night's table, byte for byte as a full publication of the night; the revocation and the veto reach every bank that held the firm the night they happen,
    with their reason, and the revoked firm as its key alone."""
    w, events = week
    publish = w.store / "publish"
    full_nights = set()
    for bank in sorted(p.name for p in publish.iterdir()):
        for day in DAYS[1:]:
            whole = w.full / day.isoformat() / bank / day.isoformat()
            if (publish / bank / day.isoformat() / "eligibility.parquet").is_file():
                full_nights.add(day)
                assert (publish / bank / day.isoformat() / "eligibility.parquet").read_bytes() == \
                    (whole / "eligibility.parquet").read_bytes()
            # from the last full table every night; through the whole week (the Monday's full table) the last night
            for start, name in ((None, "from the last full"), *([(DAYS[0], "from the first")] if day == DAYS[-1] else [])):
                rebuilt = rebuild(publish / bank, day, start, tmp_path / bank / day.isoformat() / name)
                assert rebuilt.read_bytes() == (whole / "eligibility.parquet").read_bytes(), (bank, day, name)
    assert full_nights == {date(2026, 11, 23)}  # the week's Monday; the other nights hold the change files only
    revoked, vetoed, told = events["revoked"], events["vetoed"], {"revoked": 0, "vetoed": 0}
    for bank in sorted(p.name for p in publish.iterdir()):
        d6 = pd.read_parquet(publish / bank / DAYS[5].isoformat() / "changes.parquet")
        held = set(bank_table(publish, bank, DAYS[4]).uscc)
        gone = d6[d6.uscc == revoked]
        assert (revoked in held) == (len(gone) > 0)
        assert (gone.change == "withdraw").all() and (gone.reason == "authorisation_ended").all()
        assert gone.drop(columns=["change", "reason", "uscc", "product_id"]).isna().all().all()
        told["revoked"] += len(gone) > 0
        before = bank_table(publish, bank, DAYS[5])
        was_eligible = set(before[(before.uscc == vetoed) & before.eligible].product_id)
        d7 = pd.read_parquet(publish / bank / DAYS[6].isoformat() / "changes.parquet")
        lost = d7[(d7.uscc == vetoed) & (d7.reason == "vetoed")]
        assert set(lost.product_id) == was_eligible and (lost.change == "update").all()
        told["vetoed"] += bool(was_eligible)
    assert told["revoked"] >= 2 and told["vetoed"] >= 1

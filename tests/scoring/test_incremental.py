"""An incremental night (a few per cent of firms with new data) gives the tables of a full night."""

import shutil
from datetime import date

import duckdb
import pandas as pd
import pytest

from data_contracts.contracts import contract_for
from ingestion.ingest import ingest_source
from lending.eligibility import build_eligibility
from lending.products import load_products
from models.nightly import load_reason_codes, pinned_model, score_pd
from scoring.catalogue import load_catalogue
from scoring.changes import night_plan
from scoring.score import build_indicators, build_scores, ensure_tables, peer_percentiles_sql
from simulate.landing import deliver
from tests.conftest import ingest_all
from tests.night_tables import assert_same_tables, update_night
from valuecredit.sqltext import lit
from valuecredit.store import connect

BEFORE, NIGHT = date(2026, 11, 21), date(2026, 11, 28)


def night(con, as_of, cat, model, codes, products, full=""):
    build_indicators(con, as_of, full)
    build_scores(con, as_of, cat)
    s = score_pd(con, as_of, cat, model, codes)
    build_eligibility(con, as_of, products)
    return s


@pytest.fixture(scope="module")
def nights(loan_book, trained_on, tmp_path_factory):
    """The loan book scored on BEFORE; then a night's deliveries touching about 1 % of the firms
    (a tax correction, new major penalties, a changed registration), and NIGHT computed twice from
    the same store: incrementally, and in full."""
    con0, landing0, store = loan_book
    con0.execute("CHECKPOINT")
    work = tmp_path_factory.mktemp("incremental")
    landing = work / "landing"
    shutil.copytree(landing0, landing)
    db = work / "incremental.duckdb"
    shutil.copy(store, db)
    con, cat, products, codes = connect(db), load_catalogue(), load_products(), load_reason_codes()
    model = pinned_model(trained_on(NIGHT) / "models")  # the session's champion: it scores either date
    night(con, BEFORE, cat, model, codes, products)
    # the peer percentiles of BEFORE as that night knew them, for test_a_past_nights_peer_percentiles_...
    con.execute(f"COPY ({peer_percentiles_sql(BEFORE, '(SELECT uscc FROM staging.registry)')}) TO "
                f"{lit(str(work / 'peers_before.parquet'))} (FORMAT parquet)")

    firms = con.execute("SELECT uscc FROM staging.registry ORDER BY uscc").df()["uscc"]
    tax = con.execute("SELECT * EXCLUDE (_file, _delivered_on) FROM staging.tax_monthly WHERE period = '2026-10' "
                      "AND uscc IN (SELECT * FROM unnest(?)) ORDER BY uscc", [list(firms[::100])]).df()
    deliver(landing, contract_for("tax_monthly"), "tax/tax_monthly/tax_monthly_2026-10_corrections.parquet", "2026-10",
            tax.assign(revenue_fen=tax["revenue_fen"] // 3), NIGHT)
    penalties = con.execute("SELECT * EXCLUDE (_file, _delivered_on) FROM staging.penalties ORDER BY ALL LIMIT 30").df()
    penalties = penalties.assign(uscc=list(firms[7::500][:30]), decision_no=[f"CQ-INC-{i}" for i in range(30)],
                                 decided_on=date(2026, 11, 25), severity="major_safety")
    deliver(landing, contract_for("penalties"), "market/penalties/penalties_incremental.csv", "2026-11", penalties, NIGHT)
    registry = con.execute("SELECT * EXCLUDE (_file, _delivered_on) FROM staging.registry WHERE uscc IN "
                           "(SELECT * FROM unnest(?))", [list(firms[3::1000])]).df()
    deliver(landing, contract_for("registry"), "market/registry/registry_incremental.csv", "2026-11",
            registry.assign(industry=registry["industry"].iloc[::-1].to_numpy()), NIGHT)
    for source, frame in (("tax_monthly", tax), ("penalties", penalties), ("registry", registry)):
        outcome = ingest_source(con, landing, source, NIGHT)
        new = [f for f in outcome.files if f.delivered_on == NIGHT]
        assert not outcome.rejected and [(f.status, f.rows_loaded) for f in new] == [("loaded", len(frame))], outcome
    con.close()

    full_db = work / "full.duckdb"
    shutil.copy(db, full_db)
    out = {}
    for path, full in ((db, ""), (full_db, "the test's reference")):
        con = connect(path)
        out[full or "incremental"] = night(con, NIGHT, cat, model, codes, products, full), night_plan(con, NIGHT)
        con.close()
    return db, full_db, out, len(firms)


def test_an_incremental_night_gives_the_tables_of_a_full_night(nights):
    db, full_db, out, _ = nights
    assert_same_tables(db, full_db, NIGHT)


def test_only_the_changed_firms_are_computed_again(nights):
    _, _, out, firms = nights
    (pd_inc, plan), (pd_full, full_plan) = out["incremental"], out["the test's reference"]
    assert full_plan.full_reason == "the test's reference" and full_plan.changed == full_plan.firms == firms
    assert plan.incremental and plan.previous == BEFORE and plan.firms == firms
    # 160 tax corrections, 30 penalties, 16 registrations; and the firms whose rows entered or left
    # a window (a trademark expiring, a subsidy turning three years old) in the week between
    assert 190 <= plan.changed <= 0.03 * firms
    assert pd_full.scored_again == firms
    # the changed firms, and those whose calendar-driven inputs (years in operation, clean contribution
    # months) crossed one of the model's split points: the population model splits on them more often
    # than the loan-book model did (with a champion trained as of BEFORE, 1,724 of 16,000 firms, 10.8 %,
    # since it is refitted on every training month; 1,299 before that; under 5 % with the loan-book model)
    assert plan.changed <= pd_inc.scored_again <= 0.12 * firms


def test_the_calendar_alone_changes_some_firms(nights):
    """A week without deliveries still moves rows across windows: those firms are among the changed."""
    db, _, _, _ = nights
    con = duckdb.connect(str(db), read_only=True)
    delivered = {u for (u,) in con.execute("""SELECT uscc FROM raw.tax_monthly WHERE _delivered_on = ?
        UNION SELECT uscc FROM raw.penalties WHERE _delivered_on = ? UNION SELECT uscc FROM raw.registry
        WHERE _delivered_on = ? OR _valid_to = ?""", [NIGHT] * 4).fetchall()}
    changed = {u for (u,) in con.execute("SELECT uscc FROM meta.changed_firms WHERE as_of = ?", [NIGHT]).fetchall()}
    con.close()
    assert delivered <= changed and len(changed - delivered) > 0


def test_a_late_file_or_a_new_month_makes_the_night_full(nights, tmp_path):
    """A file delivered on an earlier date but loaded only now changes what was known then: the
    previous night's rows can no longer be carried. A new month moves every firm's panels."""
    db, _, _, _ = nights
    late, after = tmp_path / "late.duckdb", date(2026, 11, 29)
    shutil.copy(db, late)
    con = connect(late)
    landing = db.parent / "landing"
    rows = con.execute("SELECT * EXCLUDE (_file, _delivered_on) FROM staging.subsidies ORDER BY ALL LIMIT 3").df()
    deliver(landing, contract_for("subsidies"), "finance/subsidies/subsidies_late.csv", "2026-11",
            rows.assign(award_id=[f"LATE-{i}" for i in range(3)]), date(2026, 11, 27))
    assert ingest_source(con, landing, "subsidies", after).rows_loaded > 0
    build_indicators(con, after)
    plan = night_plan(con, after)
    assert not plan.incremental and plan.changed == plan.firms
    assert plan.full_reason.startswith("the data as known on 2026-11-28 changed after it was computed")
    build_indicators(con, date(2026, 12, 1))
    assert night_plan(con, date(2026, 12, 1)).full_reason.startswith("a new month since 2026-11-29")
    con.close()


def test_new_code_for_a_firms_rows_makes_the_night_full(nights, tmp_path, monkeypatch):
    """Rows computed by yesterday's release are not carried into tonight's by a release that
    computes them otherwise."""
    db, _, _, _ = nights
    shutil.copy(db, tmp_path / "released.duckdb")
    con = connect(tmp_path / "released.duckdb")
    monkeypatch.setattr("scoring.changes.code_hash", lambda: "another release")
    build_indicators(con, date(2026, 11, 29))
    plan = night_plan(con, date(2026, 11, 29))
    con.close()
    assert plan.full_reason == "the code that computes a firm's rows is not the code that computed 2026-11-28"


def stage_reasons(con, as_of) -> tuple[str | None, str | None]:
    return con.execute("SELECT hits_full_reason, pd_full_reason FROM meta.night_plans WHERE as_of = ?", [as_of]).fetchone()


def test_the_night_after_the_first_champion_scores_every_firm_and_says_why(clean_store, trained_on, tmp_path):
    """Nights before the first PD model leave no PD tables at all; the night after the first champion
    has no PDs to carry. It computes every firm's, says why, and gives the tables of a full night (on the
    800 firms, with the loan book's champion: theirs is too short to train on)."""
    db, full_db = tmp_path / "first.duckdb", tmp_path / "full.duckdb"
    shutil.copy(clean_store, db)
    con, cat, products, codes = connect(db), load_catalogue(), load_products(), load_reason_codes()
    build_indicators(con, BEFORE)  # a night with the registry empty: no PD step
    build_scores(con, BEFORE, cat)
    build_eligibility(con, BEFORE, products)
    con.close()
    shutil.copy(db, full_db)
    model = pinned_model(trained_on(NIGHT) / "models")  # then a champion is trained and pinned
    out = {}
    for path, full in ((db, ""), (full_db, "the test's reference")):
        con = connect(path)
        out[full or "incremental"] = night(con, NIGHT, cat, model, codes, products, full), night_plan(con, NIGHT), \
            stage_reasons(con, NIGHT)
        con.close()
    summary, plan, (hits_reason, pd_reason) = out["incremental"]
    assert plan.incremental and plan.previous == BEFORE  # the indicators and hits are carried...
    assert hits_reason == ""
    # ...the PDs cannot be: every firm is scored, and the plan says why
    assert summary.scored_again == summary.firms == plan.firms
    assert pd_reason == summary.full_reason == (
        "pd: not computed for 2026-11-21 after its indicators (none then, or its night stopped before)")
    assert out["the test's reference"][2] == ("the test's reference", "the test's reference")
    assert_same_tables(db, full_db, NIGHT)


def test_a_night_after_one_stopped_before_its_scores_computes_every_firms_hits(clean_landing, tmp_path):
    """The night before stopped after its indicators (no scores table ever written): tonight's
    negative-list hits have nothing to carry from and are computed for every firm."""
    first, second = date(2026, 11, 26), date(2026, 11, 27)
    con, _ = ingest_all(clean_landing, tmp_path / "stopped.duckdb", first)
    build_indicators(con, first)
    con.close()
    reference = tmp_path / "reference.duckdb"
    shutil.copy(tmp_path / "stopped.duckdb", reference)
    cat = load_catalogue()
    for path, full in ((tmp_path / "stopped.duckdb", ""), (reference, "the test's reference")):
        con = connect(path)
        build_indicators(con, second, full)
        build_scores(con, second, cat)
        if not full:
            assert night_plan(con, second).incremental
            assert stage_reasons(con, second) == (
                "hits: not computed for 2026-11-26 after its indicators (none then, or its night stopped before)", None)
        con.close()
    assert_same_tables(tmp_path / "stopped.duckdb", reference, second,
                       ["features.indicators", "scores.negative_hits", "scores.commercial_value"])


def test_a_date_computed_again_forgets_what_its_stages_were_computed_with(clean_landing, tmp_path):
    """A date's indicators computed again (a rerun that stopped there) leave its hits resting on the old
    indicators: the next night does not carry them."""
    first, second = date(2026, 11, 26), date(2026, 11, 27)
    con, _ = ingest_all(clean_landing, tmp_path / "again.duckdb", first)
    cat = load_catalogue()
    build_indicators(con, first)
    build_scores(con, first, cat)
    assert con.execute("SELECT hits_made_with, hits_full_reason FROM meta.night_plans WHERE as_of = ?",
                       [first]).fetchone() == (f"catalogue {cat.content_hash}", "no earlier date computed")
    build_indicators(con, first)
    assert stage_reasons(con, first) == (None, None)
    build_indicators(con, second)
    build_scores(con, second, cat)
    assert night_plan(con, second).incremental and stage_reasons(con, second) == (
        "hits: not computed for 2026-11-26 after its indicators (none then, or its night stopped before)", None)
    con.close()


def test_a_past_nights_peer_percentiles_computed_when_read_are_those_of_that_night(nights):
    """The percentiles are not stored: read after a later night moved revenues, penalties and
    registrations (16 firms changed industry), BEFORE's are still BEFORE's, for all firms and for a
    few (whose peer groups alone are ranked)."""
    db, _, _, _ = nights
    con = duckdb.connect(str(db), read_only=True)
    then = con.execute("SELECT * FROM read_parquet(?)", [str(db.parent / "peers_before.parquet")]).df()
    everyone = con.execute(peer_percentiles_sql(BEFORE, "(SELECT uscc FROM staging.registry)")).df()
    pd.testing.assert_frame_equal(everyone, then, check_exact=True)
    few = then["uscc"].iloc[::997].tolist()
    con.execute("CREATE TEMP TABLE _few AS SELECT unnest(?::VARCHAR[]) AS uscc", [few])
    pd.testing.assert_frame_equal(con.execute(peer_percentiles_sql(BEFORE, "_few")).df(),
                                  then[then["uscc"].isin(few)].reset_index(drop=True), check_exact=True)
    tonight = con.execute(peer_percentiles_sql(NIGHT, "(SELECT uscc FROM staging.registry)")).df()
    assert len(tonight) == len(then) and not tonight.drop(columns="as_of").equals(then.drop(columns="as_of"))
    assert then.drop(columns=["uscc", "as_of", "industry", "size_class"]).notna().any().all()
    con.close()


def test_a_registry_file_dated_before_a_night_but_loaded_after_it_leaves_its_percentiles(nights, tmp_path):
    """The peer groups are the night's own (`scores.peer_groups`), not the registry as known today:
    a late correction of size classes, delivered on BEFORE and loaded a night after NIGHT, moves no
    percentile of BEFORE, though it moves the peer groups of every night computed after it."""
    db, _, _, _ = nights
    late = tmp_path / "late.duckdb"
    shutil.copy(db, late)
    con = connect(late)
    then = con.execute(peer_percentiles_sql(BEFORE, "(SELECT uscc FROM staging.registry)")).df()
    landing = db.parent / "landing"
    moved = con.execute("SELECT * EXCLUDE (_file, _delivered_on) FROM staging.registry ORDER BY uscc LIMIT 40").df()
    deliver(landing, contract_for("registry"), "market/registry/registry_late.csv", "2026-11",
            moved.assign(size_class=moved["size_class"].map(lambda s: "微型" if s != "微型" else "小型")), BEFORE)
    assert ingest_source(con, landing, "registry", date(2026, 11, 29)).rows_loaded == len(moved)
    pd.testing.assert_frame_equal(con.execute(peer_percentiles_sql(BEFORE, "(SELECT uscc FROM staging.registry)")).df(),
                                  then, check_exact=True)
    con.close()


def _store_percentiles_as_the_earlier_version(con) -> None:
    """`scores.peer_percentiles` as the version that stored them wrote it: a copy per night, of every firm."""
    everyone = "(SELECT uscc FROM staging.registry)"
    con.execute(f"CREATE TABLE scores.peer_percentiles AS SELECT * FROM ({peer_percentiles_sql(BEFORE, everyone)}) "
                f"UNION ALL SELECT * FROM ({peer_percentiles_sql(NIGHT, everyone)})")


def test_an_earlier_stores_stored_percentiles_are_kept_and_given_again(nights, tmp_path):
    """A store of the version that stored the percentiles: the peer groups its nights ranked by are
    kept from that table, which stays as it was under another name; the percentiles read are the
    ones it stored. Its groups are not the registry's (40 firms' size class moved first), so groups
    taken from the registry instead of from the table would give other percentiles."""
    db, _, _, _ = nights
    old = tmp_path / "old.duckdb"
    shutil.copy(db, old)
    con = connect(old)
    everyone = "(SELECT uscc FROM staging.registry)"
    update_night(con, "scores.peer_groups", BEFORE, "size_class = CASE WHEN size_class = '微型' THEN '小型' ELSE '微型' END",
                 "uscc IN (SELECT uscc FROM staging.registry ORDER BY uscc LIMIT 40)")
    _store_percentiles_as_the_earlier_version(con)
    stored = con.execute("SELECT * FROM scores.peer_percentiles ORDER BY as_of, uscc").df()
    con.execute("DELETE FROM scores.peer_groups_ranges")  # that version kept no peer groups
    con.execute("DELETE FROM meta.nights_held WHERE table_name = 'scores.peer_groups'")
    assert con.execute(peer_percentiles_sql(BEFORE, everyone)).df().empty
    ensure_tables(con)
    given = pd.concat([con.execute(peer_percentiles_sql(d, everyone)).df() for d in (BEFORE, NIGHT)], ignore_index=True)
    pd.testing.assert_frame_equal(given, stored, check_exact=True)
    pd.testing.assert_frame_equal(con.execute("SELECT * FROM scores.peer_percentiles_v1 ORDER BY as_of, uscc").df(), stored)
    con.close()


def test_a_report_on_a_store_not_yet_upgraded_reads_the_percentiles_it_stored(nights, tmp_path):
    """Between the upgrade and its next night a store of the version that stored the percentiles has
    no peer groups: a bank's report there reads the percentiles its night stored (it failed with a
    catalog error), and the night that upgrades it gives the same ones."""
    from scoring.score import peer_percentiles_of

    db, _, _, _ = nights
    old = tmp_path / "old.duckdb"
    shutil.copy(db, old)
    con = connect(old)
    everyone = "(SELECT uscc FROM staging.registry)"
    _store_percentiles_as_the_earlier_version(con)

    def stored_on(night):
        return con.execute(f"SELECT * FROM scores.peer_percentiles WHERE as_of = DATE {lit(night.isoformat())} "
                           "ORDER BY uscc").df()

    def read_on(night):
        return con.execute(peer_percentiles_of(con, night, everyone)).df()

    nights_stored = (BEFORE, NIGHT)
    genuine = {night: stored_on(night) for night in nights_stored}
    # that version's stored percentiles, a few of them changed on both nights: what it published is what is read
    con.execute("UPDATE scores.peer_percentiles SET revenue_growth = 0.123 WHERE uscc IN "
                "(SELECT uscc FROM staging.registry ORDER BY uscc LIMIT 5) AND revenue_growth IS NOT NULL")
    stored = {night: stored_on(night) for night in nights_stored}
    assert all((stored[night]["revenue_growth"] == 0.123).sum() >= 1 for night in nights_stored)
    con.execute("DROP VIEW scores.peer_groups; DROP TABLE scores.peer_groups_ranges")  # that version had none
    con.execute("DELETE FROM meta.nights_held WHERE table_name = 'scores.peer_groups'")
    with pytest.raises(duckdb.CatalogException):
        con.execute(peer_percentiles_sql(BEFORE, everyone))
    for night in nights_stored:
        pd.testing.assert_frame_equal(read_on(night), stored[night], check_exact=True)
    # a night stopped after the new tables were made but before the move: the peer groups exist, empty
    from valuecredit.schema import ensure

    ensure(con, "scores.peer_groups")
    assert con.execute("SELECT count(*) FROM scores.peer_groups").fetchone()[0] == 0
    for night in nights_stored:
        pd.testing.assert_frame_equal(read_on(night), stored[night], check_exact=True)
    con.execute("DELETE FROM scores.peer_percentiles")  # as that version stored them, untouched
    for night in nights_stored:
        con.register("_genuine", genuine[night])
        con.execute("INSERT INTO scores.peer_percentiles SELECT * FROM _genuine")
        con.unregister("_genuine")
    ensure_tables(con)  # the next night's writer: the groups are taken from the stored table
    for night in nights_stored:
        pd.testing.assert_frame_equal(read_on(night), genuine[night], check_exact=True)
    con.close()

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pandas as pd
import pytest
from markupsafe import escape

from pipelines.cli import main
from pipelines.definitions import defs, nightly_schedule
from pipelines.run import run_nightly
from tests.conftest import BUSINESS_DATE
from valuecredit.store import StoreBusy, writer_lock


def test_definitions_load_with_job_schedule_and_blocking_checks():
    repo = defs.get_repository_def()
    job = repo.get_job("nightly")
    assert job.partitions_def.timezone == "Asia/Shanghai"
    # one asset per source, then coverage, indicators, scores, PDs, eligibility, publication, ledger, deadlines,
    # warnings, the bank report batches, the portfolio reports and the audit pack; and, outside the nightly job,
    # the retraining asset and the scale-out scoring (indicators and scores on partitions of firms)
    from data_contracts.contracts import CONTRACTS
    keys = repo.asset_graph.get_all_asset_keys()
    assert {k for k in keys if k.path[0] == "staging" and k.path[1] != "firm_coverage"} == {
        dg.AssetKey(["staging", c.source]) for c in CONTRACTS}
    assert len(keys) == len(CONTRACTS) + 14
    assert dg.AssetKey(["models", "pd_champion"]) not in job.asset_layer.selected_asset_keys
    assert dg.AssetKey(["scores", "by_firm_partition"]) not in job.asset_layer.selected_asset_keys
    assert repo.get_job("scale_out_scoring").executor_def.name == "multiprocess_under_store_lock"
    assert repo.get_job("retrain_pd").asset_layer.selected_asset_keys == {dg.AssetKey(["models", "pd_champion"])}
    # runs launched from the UI hold the store for their whole run in one process (one writer per store)
    assert {j.name: j.executor_def.name for j in repo.get_all_jobs()}["__ASSET_JOB"] == "in_process"
    from pipelines.definitions import all_checks
    checks = [c for a in all_checks for c in a.check_specs]
    # a contract check per source; score, PD, eligibility and ledger checks
    assert len(repo.asset_graph.asset_check_keys) == len(CONTRACTS) + 4 + 5 + 2 + 6
    # every check blocks publication but two: drift and the order of PDs by grade warn, a person decides
    assert [c.name for c in checks if not c.blocking] == ["pd_rises_with_grade", "population_stability"]
    assert len(checks) == len(CONTRACTS) + 17
    schedule = repo.get_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 2 * * *" and schedule.execution_timezone == "Asia/Shanghai"


def test_schedule_processes_the_day_that_just_ended():
    when = datetime(2026, 11, 28, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    ctx = dg.build_schedule_context(scheduled_execution_time=when)
    request = nightly_schedule(ctx)
    assert request.partition_key == "2026-11-27"


def test_failed_contract_blocks_dependents_while_other_sources_go_on(faulty_landing, tmp_path):
    summary = run_nightly(BUSINESS_DATE, faulty_landing, tmp_path / "p.duckdb")
    faults = pd.read_csv(faulty_landing / "_truth" / "faults.csv")
    broken = set(faults[faults.row.isna() & faults.fault.isin(
        ["file_truncated", "column_missing", "column_renamed", "wrong_encoding"])].source)
    assert {k.split("/")[1] for k in summary.failed_checks} == {f"{s}:contract" for s in broken}
    assert summary.blocked == ["decisions/early_warnings", "decisions/eligibility", "decisions/publication",
                               "features/indicators", "reports/audit_pack", "reports/bank_batches", "reports/portfolio", "scores/commercial_value",
                               "scores/pd", "staging/firm_coverage"]
    assert not summary.succeeded
    # the healthy sources were loaded all the same
    assert summary.table_rows["staging.tax_monthly"] > 10_000
    assert "staging.firm_coverage" not in summary.table_rows
    # a table kept by validity range is named as it is read, with the night's rows (none: blocked)
    assert summary.table_rows.get("features.indicators", 0) == 0 and not any(n.endswith("_ranges") for n in summary.table_rows)


def test_cli_run_end_to_end_and_idempotent(clean_landing, tmp_path, capsys, recorded_beside_the_store):
    db = tmp_path / "cli.duckdb"
    args = ["run", "--date", BUSINESS_DATE.isoformat(), "--landing", str(clean_landing), "--db", str(db)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "succeeded" in out and "staging.tax_monthly" in out
    con = duckdb.connect(str(db), read_only=True)
    firms = con.execute("SELECT count(*) FROM scores.commercial_value WHERE as_of = ?", [BUSINESS_DATE]).fetchone()[0]
    con.close()
    assert firms > 700 and f"features.indicators {firms:,}" in " ".join(out.replace("│", " ").split())
    assert "_ranges" not in out
    # 800 firms have too short a loan book for a PD model: scores and ledger stand, PDs wait, it says why
    assert "no PD model yet" in out and "defaults are needed" in out and "the night ran on the score alone" in out
    pack = (tmp_path / "reports" / "audit" / BUSINESS_DATE.isoformat() / "audit_pack.html").read_text()
    assert "本日项目仅依据4+19+1评分及其规则运行" in pack and "该日之前没有训练记录" in pack
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM scores.pd").fetchone()[0] == 0
    # without PDs no product can be priced: nobody is eligible, and each refusal says so
    assert con.execute("SELECT count(*) FILTER (eligible), count(*) FILTER (NOT list_contains("
                       "[s.condition FOR s IN shortfalls], 'pricing') AND len(gates) = 0) FROM decisions.eligibility"
                       ).fetchone() == (0, 0)
    before = con.execute("SELECT * FROM staging.firm_coverage ORDER BY ALL").df()
    con.close()
    # the night's portfolio reports stand beside a store kept outside data/; no model, so the audit pack
    # is the one page that says so (read above)
    reports = tmp_path / "reports"
    assert (reports / "portfolio" / "programme" / BUSINESS_DATE.isoformat() / "portfolio.html").exists()
    assert len(list((reports / "portfolio").glob(f"B*/{BUSINESS_DATE.isoformat()}/portfolio.html"))) == 17
    assert [p.name for p in (reports / "audit").rglob("*.html")] == ["audit_pack.html"]
    assert main(args) == 0
    con = duckdb.connect(str(db), read_only=True)
    pd.testing.assert_frame_equal(before, con.execute("SELECT * FROM staging.firm_coverage ORDER BY ALL").df())
    assert (before.tax_monthly_months > 0).mean() > 0.9
    # both nights are recorded in the Dagster instance beside the store, the one the UI reads: the
    # date's partitions materialised, the checks evaluated, the runs in its history
    instance = dg.DagsterInstance.from_config(str(tmp_path / "dagster_home"))
    for key in (["scores", "commercial_value"], ["decisions", "publication"], ["ledger", "postings"]):
        assert instance.get_materialized_partitions(dg.AssetKey(key)) == {BUSINESS_DATE.isoformat()}, key
    assert instance.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey(["scores", "commercial_value"]), "score_ranges")).event.asset_check_evaluation.passed
    pack_event = instance.get_latest_materialization_event(dg.AssetKey(["reports", "audit_pack"]))
    assert pack_event.asset_materialization.metadata["model"].value == "none"  # the version that decided, or none
    runs = instance.get_runs()
    assert len(runs) >= 2 and all(r.tags.get("valuecredit/trigger") == "cli" for r in runs)
    assert (tmp_path / "dagster_home" / "dagster.yaml").read_text() == (Path(__file__).parents[2] / "dagster.yaml").read_text()


def test_a_second_writer_is_refused_with_a_clear_message(tmp_path, capsys):
    db = tmp_path / "busy.duckdb"
    with writer_lock(db):
        try:
            with writer_lock(db):
                raise AssertionError("second writer admitted")
        except StoreBusy as exc:
            assert "another run" in str(exc) and str(db) in str(exc)
        assert main(["run", "--date", "2026-11-28", "--landing", str(tmp_path), "--db", str(db)]) == 3
    assert "refused" in capsys.readouterr().err


def test_bad_date_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--date", "28/11/2026"])
    assert "not a date" in capsys.readouterr().err


def test_dagster_yaml_admits_one_run_at_a_time(tmp_path, monkeypatch):
    shutil.copy(Path(__file__).parents[2] / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = dg.DagsterInstance.get()
    assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_a_first_model_without_the_evidence_is_not_promoted_and_the_run_says_why(clean_landing, after_first_clean_night,
        monkeypatch, capsys):
    """A candidate that does not beat the 4+19+1 score out of time leaves the store without a champion:
    the night runs on the score and its rules alone, and says so."""
    import pipelines.models
    from models.registry import champion, record_decision

    reason = ("out-of-time AUC 0.80 on the population does not beat the 4+19+1 score's 0.80 with 95 % confidence "
              "(difference 0.0, interval -0.01 to 0.01); the programme runs on the score and its rules alone")

    def refused(con, cat, registry, decided_on, truth=None):
        record_decision(registry, {"version": "pd-candidate", "champion": None, "promoted": False, "reason": reason,
                                   "decided_on": decided_on.isoformat(), "candidate": {"auc": 0.8},
                                   "score_4_19_1": {"auc": 0.8, "difference": 0.0, "interval_95": [-0.01, 0.01]}})
        metrics = {"auc": 0.6, "ece": 0.01}
        return {"version": "pd-candidate", "method": "population", "decision": {"promoted": False, "reason": reason},
                "population": {"auc": {"model": 0.8, "score_4_19_1": 0.8}, "events": 500},
                "out_of_time": {"gbm": metrics, "scorecard": metrics}, "train": {"loans": 1000}}

    monkeypatch.setattr(pipelines.models, "retrain", refused)
    store = after_first_clean_night  # no model yet: its next night tries to train the first
    db = store / "night.duckdb"
    assert main(["run", "--date", BUSINESS_DATE.isoformat(), "--landing", str(clean_landing), "--db", str(db)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert champion(store / "models") is None
    assert f"scores/pd: no PD model yet: not promoted: {reason}" in out and "the night ran on the score alone" in out
    pack = (store / "reports" / "audit" / BUSINESS_DATE.isoformat() / "audit_pack.html").read_text()
    assert "本日项目仅依据4+19+1评分及其规则运行" in pack and "未晋级" in pack
    assert str(escape(reason)) in pack  # as the page escapes it: the verdict and the registry's own words
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM scores.pd").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM scores.commercial_value WHERE as_of = ?", [BUSINESS_DATE]).fetchone()[0] > 700
    # later: a champion promoted, and the decision log cut short by a crash. The pack of that night
    # still says it ran on the score alone, quoting the verdict of that night, not a later one; a day
    # that never ran has no pack
    from models.registry import CHAMPION
    from reports.audit import ReplayError, audit_pack
    from scoring.catalogue import load_catalogue

    (store / "models" / CHAMPION).write_text('{"version": "pd-later", "since": "2030-01-01"}')
    record_decision(store / "models", {"version": "pd-later", "champion": None, "promoted": True,
                                       "reason": "a later promotion", "decided_on": "2030-01-01"})
    # a training as of an earlier date, run after that night: logged last, but not the latest by the night
    record_decision(store / "models", {"version": "pd-backdated", "champion": None, "promoted": False,
                                       "reason": "a training as of an earlier date, run later",
                                       "decided_on": (BUSINESS_DATE - timedelta(days=30)).isoformat()})
    with open(store / "models" / "decisions.jsonl", "a", encoding="utf-8") as log:
        log.write('{"version": "pd-cut", "promo')
    again = audit_pack(con, BUSINESS_DATE, store / "models", load_catalogue(), store / "later", lang="en")
    text = again.read_text()
    assert "ran on the 4+19+1 score and its rules alone" in text and str(escape(reason)) in text
    why = " ".join(text.split()).split("Why: the latest training by that night")[1].split("</div>")[0]
    assert str(escape(reason)) in why and "run later" not in why
    assert "Why: the latest training by that night" in " ".join(text.split()) and "a later promotion" in text  # history
    assert "1 line(s) of the decision log could not be read" in text
    # a verdict stamped with a time of day on the night itself counts for that night; one whose date
    # cannot be read is listed but never quoted as the night's
    for stamp, words in ((f"{BUSINESS_DATE.isoformat()} 23:00:00", "refused again that evening"), ("soon", "undated")):
        record_decision(store / "models", {"version": "pd-" + words.split()[0], "champion": None, "promoted": False,
                                           "reason": words, "decided_on": stamp})
    text = " ".join(audit_pack(con, BUSINESS_DATE, store / "models", load_catalogue(), store / "later2",
                               lang="en").read_text().split())
    why = text.split("Why: the latest training by that night")[1].split("</div>")[0]
    assert "refused again that evening" in why and "undated" not in why and "undated" in text
    with pytest.raises(ReplayError, match="no night stored for 2030-01-02"):
        audit_pack(con, date(2030, 1, 2), store / "models", load_catalogue(), store / "later")
    con.close()


def test_a_first_model_that_fails_to_train_fails_the_run_but_the_decisions_go_out(clean_landing, after_first_clean_night,
        monkeypatch, capsys):
    """A fault in training the first model (not a short loan book) fails the run, once the night has
    decided and published on the score and its rules: the banks still get tonight's withdrawals."""
    import pipelines.models
    from models.registry import champion

    def broken(con, cat, registry, decided_on, truth=None):
        raise MemoryError("LightGBM could not allocate\nsecond line")

    monkeypatch.setattr(pipelines.models, "retrain", broken)
    store = after_first_clean_night  # no model yet: its next night tries to train the first
    db = store / "night.duckdb"
    assert main(["run", "--date", BUSINESS_DATE.isoformat(), "--landing", str(clean_landing), "--db", str(db)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "step failed scores/pd: training the first PD model failed: MemoryError: LightGBM could not allocate" in out
    assert "second line" not in out and champion(store / "models") is None
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT count(*) FROM scores.pd").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM decisions.eligibility_firms WHERE as_of = ?", [BUSINESS_DATE]).fetchone()[0] > 700
    con.close()
    assert all((bank / BUSINESS_DATE.isoformat() / "changes.parquet").is_file() for bank in (store / "publish").iterdir())

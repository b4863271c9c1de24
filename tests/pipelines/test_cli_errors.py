"""Every error a person sees from the command line is one line on stderr (what, where, why) with exit
2, never a traceback; a run's step failures are summarised by what went wrong; a broken configuration
file fails its step at once, naming the file, instead of being retried as if it were transient."""

import time
from datetime import date, timedelta

import dagster as dg
import duckdb
import pytest

from pipelines.cli import main
from pipelines.models import eligibility
from pipelines.resources import CatalogueFile, ProductsFile, SilentProgress, Store
from pipelines.run import _why
from pipelines.scoring import commercial_value

FUTURE = (date.today() + timedelta(days=2)).isoformat()
BROKEN_YAML = "version: 3\nindicators: [unclosed\n"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_errors")
    duckdb.connect(str(d / "store.duckdb")).close()
    (d / "broken.yaml").write_text(BROKEN_YAML, encoding="utf-8")
    (d / "landing").mkdir()
    return d


def exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's refusals
        return exc.code


BAD = {
    "future date": (["run", "--date", FUTURE, "--db", "{d}/new.duckdb", "--landing", "{d}/landing"],
                    f"argument --date: {FUTURE} is in the future"),
    "future date, report": (["report", "portfolio", "--date", FUTURE, "--db", "{d}/store.duckdb"], "is in the future"),
    "bad date": (["run", "--date", "28/11/2026"], "'28/11/2026' is not a date (YYYY-MM-DD)"),
    "bad USCC": (["match", "--firm", "91110000XXXX", "--db", "{d}/store.duckdb"],
                 "'91110000XXXX' is not a valid unified social credit code"),
    "bad USCC, report": (["report", "firm", "91110000MA01ABCD1X", "--db", "{d}/store.duckdb"],
                         "is not a valid unified social credit code"),
    "missing store, statement": (["ledger", "statement", "--db", "{d}/nope.duckdb"],
                                 "--db {d}/nope.duckdb: no such store"),
    "missing store, report": (["report", "portfolio", "--db", "{d}/nope.duckdb"], "--db {d}/nope.duckdb: no such store"),
    "missing store, replay": (["model", "replay", "--date", "2026-11-28", "--db", "{d}/nope.duckdb"], "no such store"),
    "missing store, train": (["model", "train", "--db", "{d}/nope.duckdb"], "--db {d}/nope.duckdb: no such store"),
    "missing store, rebuild": (["ledger", "rebuild", "--db", "{d}/nope.duckdb"], "--db {d}/nope.duckdb: no such store"),
    "no landing folder": (["run", "--date", "2026-11-28", "--landing", "{d}/no_landing", "--db", "{d}/new.duckdb"],
                          "--landing {d}/no_landing: no such folder"),
    "broken catalogue": (["score", "calibrate", "--catalogue", "{d}/broken.yaml", "--db", "{d}/store.duckdb"],
                         "{d}/broken.yaml: not valid YAML at line 3"),
    "broken pool file": (["ledger", "rebuild", "--pool", "{d}/broken.yaml", "--db", "{d}/store.duckdb"],
                         "{d}/broken.yaml: not valid YAML"),
    "broken calendar": (["ledger", "rebuild", "--calendar", "{d}/broken.yaml", "--db", "{d}/store.duckdb"],
                        "{d}/broken.yaml: not valid YAML"),
    "broken products": (["audit", "replay", "--firm", "91350100M000100Y43", "--date", "2026-11-28",
                         "--products", "{d}/broken.yaml", "--db", "{d}/store.duckdb"], "{d}/broken.yaml: not valid YAML"),
    "unknown command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "missing argument": (["backup"], "the following arguments are required: --to"),
    "backup into an existing folder": (["backup", "--db", "{d}/store.duckdb", "--to", "{d}/landing"],
                                       "{d}/landing already exists"),
    "restore from a folder that is no backup": (["restore", "{d}/landing", "--db", "{d}/restored.duckdb"],
                                                "{d}/landing/manifest.json: not a readable backup manifest"),
    "unreadable CSV": (["model", "evaluate", "--data", "{d}/nope.csv", "--target", "x"], "{d}/nope.csv: no such file"),
}


@pytest.mark.parametrize("case", BAD)
def test_a_bad_invocation_is_one_line_on_stderr_with_exit_2(case, files, capsys):
    argv, message = BAD[case]
    started = time.perf_counter()
    assert exit_code([a.format(d=files) for a in argv]) == 2
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err + out, err
    assert message.format(d=files) in lines[0] and lines[0].startswith("valuecredit")
    assert time.perf_counter() - started < 15  # refused before any work
    assert not {"new.duckdb", "restored.duckdb", "nope.duckdb", "nope.duckdb.lock"} & {p.name for p in files.iterdir()}


def test_an_unexpected_error_is_one_line_too_and_developers_can_see_the_traceback(files, capsys, monkeypatch):
    import models.evaluate

    def broken(*args, **kwargs):  # a library failing in a way nobody named
        raise IsADirectoryError(21, "Is a directory", str(files / "dir.csv"))

    monkeypatch.setattr(models.evaluate, "prepare", broken)
    argv = ["model", "evaluate", "--data", str(files / "dir.csv"), "--target", "x"]
    assert exit_code(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "IsADirectoryError" in err and str(files / "dir.csv") in err
    monkeypatch.setenv("VALUECREDIT_DEBUG", "1")
    with pytest.raises(IsADirectoryError):
        main(argv)


@dg.asset
def bad_sql(store: Store) -> None:
    with store.connect() as con:
        con.execute("SELECT nope FROM range(3)")


def test_a_step_failing_in_duckdb_is_summarised_by_duckdbs_message_not_its_caret_line(tmp_path):
    result = dg.materialize([bad_sql], resources={"store": Store(database=str(tmp_path / "s.duckdb"))},
                            raise_on_error=False)
    (failure,) = result.get_step_failure_events()
    assert "^^^^" in failure.event_specific_data.error.to_string()  # what the summary used to show
    assert _why(failure.event_specific_data.error) == 'Binder Error: Referenced column "nope" not found in FROM clause!'


@pytest.mark.parametrize("asset,resource,file", [
    (commercial_value, "catalogue", CatalogueFile),
    (eligibility, "products", ProductsFile),
])
def test_a_broken_config_file_fails_its_step_at_once_naming_the_file(asset, resource, file, files, tmp_path):
    """The asset has the retry policy of transient failures (30 s, then 60 s); a file that is not
    valid YAML is not transient."""
    started = time.perf_counter()
    result = dg.materialize([asset], partition_key="2026-11-28", raise_on_error=False, resources={
        "store": Store(database=str(tmp_path / "s.duckdb")), "progress": SilentProgress(),
        resource: file(path=str(files / "broken.yaml"))})
    assert time.perf_counter() - started < 20
    (failure,) = result.get_step_failure_events()
    assert f"{files / 'broken.yaml'}: not valid YAML at line 3" in _why(failure.event_specific_data.error)
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]


def test_a_store_that_is_not_a_duckdb_file_fails_at_once_not_after_a_hundred_seconds_of_retries(tmp_path):
    db = tmp_path / "s.duckdb"
    db.write_bytes(b"not a database" * 1000)
    started = time.perf_counter()
    result = dg.materialize([bad_sql], resources={"store": Store(database=str(db))}, raise_on_error=False)
    assert time.perf_counter() - started < 20
    (failure,) = result.get_step_failure_events()
    assert "not a valid DuckDB database file" in _why(failure.event_specific_data.error)


def test_the_commands_read_and_write_where_the_night_does(tmp_path, monkeypatch):
    """The registry, the publication and the operator's files of a store are where its nightly run has
    them: the command line's flag, else the night's environment variable, else beside the store."""
    import argparse

    from pipelines.cli import _in_force
    from scoring.catalogue import DEFAULT_CATALOGUE

    args = argparse.Namespace(db=str(tmp_path / "s.duckdb"))
    for var in ("VALUECREDIT_MODELS", "VALUECREDIT_PUBLISH", "VALUECREDIT_CATALOGUE"):
        monkeypatch.delenv(var, raising=False)
    assert _in_force(args, "registry", None) == tmp_path / "models"
    assert _in_force(args, "publish_folder", None) == tmp_path / "publish"
    assert _in_force(args, "catalogue", None) == DEFAULT_CATALOGUE
    monkeypatch.setenv("VALUECREDIT_MODELS", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("VALUECREDIT_CATALOGUE", str(tmp_path / "cat.yaml"))
    monkeypatch.setenv("VALUECREDIT_PUBLISH", str(tmp_path / "out"))
    assert _in_force(args, "publish_folder", None) == tmp_path / "out"
    assert _in_force(args, "registry", None) == tmp_path / "elsewhere"
    assert _in_force(args, "catalogue", None) == tmp_path / "cat.yaml"
    assert _in_force(args, "registry", str(tmp_path / "flag")) == tmp_path / "flag"  # the flag wins

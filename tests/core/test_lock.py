"""One writer per store, whatever the path to it or the launcher: the CLI, a Dagster run (the
schedule, the UI, the scale-out job), a backup. A second writer is refused at once, in one line."""

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.cli import main
from pipelines.partitions import retry_policy
from pipelines.resources import Store
from valuecredit.store import StoreLocked, lock_path, writer_lock

ROOT = Path(__file__).parents[2]


def hold(code: str) -> subprocess.Popen:
    """Another process that runs `code` (which prints "held" once it has the store) and then waits."""
    p = subprocess.Popen([sys.executable, "-c", code + "\nimport time\ntime.sleep(120)"], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def hold_lock(db: Path) -> subprocess.Popen:
    return hold(f"from valuecredit.store import writer_lock\nlock = writer_lock({str(db)!r})\nlock.__enter__()\n"
                "print('held', flush=True)")


def hold_as_a_dagster_run(db: Path) -> subprocess.Popen:
    """A Dagster run in the middle of a step: the store resource initialised, its connection open."""
    return hold("import dagster as dg\nfrom pipelines.resources import Store\n"
                f"resources = dg.build_resources({{'store': Store(database={str(db)!r})}})\n"
                "connection = resources.__enter__().store.connect()\ncon = connection.__enter__()\nprint('held', flush=True)")


@pytest.fixture
def other(request):
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_second_writer_in_another_process_is_refused_naming_the_store_and_the_holder(tmp_path, other, capsys):
    db = tmp_path / "night.duckdb"
    other.append(p := hold_lock(db))
    started = time.perf_counter()
    assert main(["run", "--date", "2026-11-28", "--landing", str(tmp_path), "--db", str(db)]) == 3
    line = one_error_line(capsys)
    assert str(db) in line and f"pid {p.pid}" in line and "refused" in line
    assert time.perf_counter() - started < 10  # refused, not queued
    assert not (tmp_path / "manifest.csv").exists()  # nothing was simulated or run


def test_a_symlink_or_a_relative_path_to_the_store_finds_the_same_lock(tmp_path, other, capsys, monkeypatch):
    real = tmp_path / "store" / "night.duckdb"
    real.parent.mkdir()
    duckdb.connect(str(real)).close()
    (tmp_path / "link.duckdb").symlink_to(real)
    (tmp_path / "linked_folder").symlink_to(real.parent)
    assert lock_path(tmp_path / "link.duckdb") == lock_path(tmp_path / "linked_folder" / "night.duckdb") == \
        Path(os.path.realpath(real) + ".lock")
    other.append(p := hold_lock(tmp_path / "link.duckdb"))  # the first run came in through the symlink
    for db in (real, tmp_path / "linked_folder" / "night.duckdb"):
        assert main(["run", "--date", "2026-11-28", "--landing", str(tmp_path), "--db", str(db)]) == 3
        assert f"pid {p.pid}" in one_error_line(capsys)
    monkeypatch.chdir(real.parent)
    assert main(["backup", "--db", "night.duckdb", "--to", str(tmp_path / "b")]) == 3
    assert f"pid {p.pid}" in one_error_line(capsys) and not (tmp_path / "b").exists()


def test_a_hard_link_or_a_deleted_lock_file_does_not_let_a_second_writer_in(tmp_path, other, capsys):
    """The lock file is keyed by the path: a hard link (or a bind mount) is another path to the same
    file, and a lock file deleted by a tidy operator is a new one. The store's own file is locked too."""
    real = tmp_path / "night.duckdb"
    duckdb.connect(str(real)).close()
    os.link(real, tmp_path / "alias.duckdb")
    other.append(hold_lock(tmp_path / "alias.duckdb"))
    assert main(["ledger", "rebuild", "--db", str(real)]) == 3
    assert "holds the store's file itself" in one_error_line(capsys)
    first = other.pop()
    first.kill()
    first.wait()
    other.append(hold_lock(real))
    lock_path(real).unlink()  # the holder's lock file, deleted while it runs
    assert main(["ledger", "rebuild", "--db", str(real)]) == 3
    assert "holds the store's file itself" in one_error_line(capsys)


@pytest.mark.parametrize("command", [
    ["backup", "--to", "{d}/b2"], ["restore", "{d}/b1"], ["ledger", "rebuild"], ["model", "train"],
    ["score", "calibrate", "--adopt", "--out", "{d}/calibration"]])
def test_every_command_that_writes_the_store_or_the_registry_is_refused_while_another_holds_it(
        command, tmp_path, other, capsys):
    db = tmp_path / "night.duckdb"
    duckdb.connect(str(db)).close()
    assert main(["backup", "--db", str(db), "--to", str(tmp_path / "b1")]) == 0
    capsys.readouterr()
    other.append(p := hold_lock(db))
    assert main([a.format(d=tmp_path) for a in command] + ["--db", str(db)]) == 3
    assert f"pid {p.pid}" in one_error_line(capsys)
    assert not (tmp_path / "b2").exists() and not (tmp_path / "calibration").exists()


def test_the_lock_joins_its_own_process_run_but_never_a_second_command(tmp_path):
    db = tmp_path / "night.duckdb"
    with writer_lock(db):
        with writer_lock(db, join=True), writer_lock(tmp_path / "." / "night.duckdb", join=True):
            pass  # `valuecredit run` materialises several times under the lock it holds
        with pytest.raises(StoreLocked, match=f"pid {os.getpid()}"):
            with writer_lock(db):  # a backup started by the same process is still a second writer
                pass
    with writer_lock(db):  # released when the outermost holder leaves
        pass


@dg.asset(retry_policy=retry_policy)
def touch_store(store: Store) -> None:
    with store.connect() as con:
        con.execute("CREATE TABLE meta.touched AS SELECT 1 AS x")


def test_a_dagster_run_is_refused_while_another_process_holds_the_store(tmp_path, other):
    db = tmp_path / "night.duckdb"
    other.append(p := hold_lock(db))
    started = time.perf_counter()
    with pytest.raises(dg.DagsterResourceFunctionError) as refused:  # the run stops before its first step
        dg.materialize([touch_store], resources={"store": Store(database=str(db))})
    assert f"refused, the store is being written by another run (pid {p.pid}" in str(refused.value.__cause__)
    assert time.perf_counter() - started < 20  # no retry, no wait
    p.kill()
    p.wait()
    assert not db.exists()  # the refused run did not even open the store
    assert dg.materialize([touch_store], resources={"store": Store(database=str(db))}).success  # once it has gone


def test_the_scale_out_job_is_refused_while_another_process_holds_the_store(tmp_path, other, monkeypatch):
    """The job's own executor (steps in processes of their own) takes the lock for the whole run."""
    db = tmp_path / "night.duckdb"
    other.append(p := hold_lock(db))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    monkeypatch.setenv("VALUECREDIT_DB", str(db))
    job = dg.reconstructable(scale_out_job_on_test_store)
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(job, instance, tags={"dagster/partition": "2026-11-28"})
        assert not result.success
        failure = next(e.dagster_event.event_specific_data.error for e in instance.all_logs(result.run_id)
                       if e.dagster_event and e.dagster_event.event_type == dg.DagsterEventType.RUN_FAILURE)
    assert f"refused, the store is being written by another run (pid {p.pid}" in failure.to_string()
    assert not result.get_step_success_events()  # no step ran


def scale_out_job_on_test_store() -> dg.JobDefinition:
    from pipelines.definitions import all_assets
    from pipelines.resources import resources
    from pipelines.scale_out import scale_out_job
    return dg.Definitions(assets=all_assets, jobs=[scale_out_job],
                          resources=resources(os.environ["VALUECREDIT_DB"])).resolve_job_def("scale_out_scoring")


@dg.op
def second_writer_refused(store: Store) -> bool:
    """A step in a process of its own: in under its run's lock, which no other writer gets meanwhile."""
    try:
        with writer_lock(store.database):
            return False
    except StoreLocked:
        return True


def job_of_parallel_steps() -> dg.JobDefinition:
    from pipelines.scale_out import multiprocess_under_store_lock

    @dg.job(executor_def=multiprocess_under_store_lock)
    def parallel_steps():
        second_writer_refused.alias("a")()
        second_writer_refused.alias("b")()

    return dg.Definitions(jobs=[parallel_steps], resources={"store": Store(database=os.environ["VALUECREDIT_DB"])}
                          ).resolve_job_def("parallel_steps")


def test_the_scale_out_executor_holds_the_lock_for_the_run_and_its_step_processes_join_it(tmp_path, monkeypatch):
    db = tmp_path / "night.duckdb"
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    monkeypatch.setenv("VALUECREDIT_DB", str(db))
    with dg.DagsterInstance.get() as instance:
        with dg.execute_job(dg.reconstructable(job_of_parallel_steps), instance) as result:
            assert result.success
            assert result.output_for_node("a") is True and result.output_for_node("b") is True
            assert lock_path(db).read_text() == f"pid {os.getpid()} run {result.run_id}"  # the orchestrator's
    with writer_lock(db):  # and released with the run
        pass


def test_a_backup_while_a_dagster_run_writes_is_refused_in_one_line(tmp_path, other, capsys):
    db = tmp_path / "night.duckdb"
    duckdb.connect(str(db)).close()
    other.append(p := hold_as_a_dagster_run(db))
    assert main(["backup", "--db", str(db), "--to", str(tmp_path / "b")]) == 3
    line = one_error_line(capsys)
    assert f"pid {p.pid}" in line and str(db) in line and "IOException" not in line
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()


def test_a_backup_while_a_reader_has_the_store_open_says_so_in_one_line(tmp_path, other, capsys):
    db = tmp_path / "night.duckdb"
    duckdb.connect(str(db)).close()
    other.append(hold(f"import duckdb\ncon = duckdb.connect({str(db)!r}, read_only=True)\nprint('held', flush=True)"))
    assert main(["backup", "--db", str(db), "--to", str(tmp_path / "b")]) == 2
    line = one_error_line(capsys)
    assert "is open in another process" in line and "IOException" not in line and str(db) in line

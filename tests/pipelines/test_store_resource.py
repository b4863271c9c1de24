"""The store resource within one run: the file is opened once and shared by the steps; a step that
only reads gets the run's database (a second open of the file in the same process is refused by
DuckDB); a database a fatal error invalidated is opened again for the next step."""

import dagster as dg
import duckdb

from pipelines.resources import Store


@dg.asset
def written(store: Store) -> None:
    with store.connect() as con:
        con.execute("CREATE TABLE meta.note AS SELECT 42 AS answer")


@dg.asset(deps=[written])
def read_after(context: dg.AssetExecutionContext, store: Store) -> None:
    with store.read() as con:  # read-only opens of the same file used to fail here in one process
        context.add_output_metadata({"answer": con.execute("SELECT answer FROM meta.note").fetchone()[0]})


def _answer(result) -> int:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == ["read_after"]]
    return event.materialization.metadata["answer"].value


def test_a_reading_step_after_a_writing_one_in_the_same_run_reads_the_runs_database(tmp_path):
    db = tmp_path / "s.duckdb"
    result = dg.materialize([written, read_after], resources={"store": Store(database=str(db))})
    assert result.success and _answer(result) == 42
    # outside a run, read() opens the file read-only
    with Store(database=str(db)).read() as con:
        assert con.execute("SELECT answer FROM meta.note").fetchone()[0] == 42


@dg.asset
def a_breaks_the_database(store: Store) -> None:
    with store.connect() as con:
        con.execute("SELECT 1")
        store._run_database.close()  # as a fatal error leaves it: every further statement refused
        con.execute("SELECT 1")


@dg.asset  # no dependency: a failed upstream step would skip it; steps of one level run in key order
def b_step_after(store: Store) -> None:
    with store.connect() as con:
        con.execute("CREATE TABLE meta.after AS SELECT 1 AS ok")


def test_a_database_left_unusable_by_one_step_is_opened_again_for_the_next(tmp_path):
    db = tmp_path / "s.duckdb"
    result = dg.materialize([a_breaks_the_database, b_step_after], resources={"store": Store(database=str(db))},
                            raise_on_error=False)
    started = [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]
    assert started == ["a_breaks_the_database", "b_step_after"]
    assert {e.step_key for e in result.get_step_failure_events()} == {"a_breaks_the_database"}
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT ok FROM meta.after").fetchone()[0] == 1
    con.close()

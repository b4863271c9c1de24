"""Where the tests' nights are recorded. `valuecredit run` records every night in the Dagster
instance beside its store (SQLite files the UI reads: `pipelines.run.recorded_in`); writing those
events took about 2.5 s of each small night (a few hundred events, each committed on its own), paid
again by every night the suite runs. The tests' nights are therefore recorded in memory (the few
files Dagster still writes go where the real instance would be, inside the test's folder); the
tests about the recording itself ask for the real instance: the `recorded_beside_the_store`
fixture, and two of the crash tests' stages."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

import pipelines.run

RECORDED_BESIDE_THE_STORE = pipelines.run.recorded_in


def record_nights_in_memory() -> None:
    pipelines.run.recorded_in = lambda db: dg.DagsterInstance.ephemeral(tempdir=str(Path(db).parent / "dagster_tmp"))


def record_nights_beside_the_store() -> None:
    pipelines.run.recorded_in = RECORDED_BESIDE_THE_STORE


@contextmanager
def nights_recorded_beside_the_store() -> Iterator[None]:
    """Within the block, as `valuecredit run` records them; then as before."""
    before = pipelines.run.recorded_in
    record_nights_beside_the_store()
    try:
        yield
    finally:
        pipelines.run.recorded_in = before

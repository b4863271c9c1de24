"""Resources: where the store and the landing zone are, and who hears about progress."""


from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from valuecredit.store import init_store


class Store(DuckDBResource):
    """The DuckDB file every asset reads and writes; schemas are created on first use."""

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # dagster-duckdb closes its connection only when the step succeeds; a failed step would
        # leave the file open in this process, so the connection is closed here whatever happens
        with self.get_connection() as con:
            try:
                init_store(con)
                yield con
            finally:
                con.close()


class LandingZone(dg.ConfigurableResource):
    """The folder where departments deliver files, with its manifest.csv."""

    path: str


class ProgressReporter(Protocol):
    def done(self, step: str, detail: str) -> None: ...


class SilentProgress:
    def done(self, step: str, detail: str) -> None:
        return None

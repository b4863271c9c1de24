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
        with self.get_connection() as con:
            init_store(con)
            yield con


class LandingZone(dg.ConfigurableResource):
    """The folder where departments deliver files, with its manifest.csv."""

    path: str


class ProgressReporter(Protocol):
    def done(self, step: str, detail: str) -> None: ...


class SilentProgress:
    def done(self, step: str, detail: str) -> None:
        return None

"""Resources: where the store and the landing zone are, and who hears about progress."""


import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from typing import Protocol, TypeVar

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from valuecredit.configfile import ConfigError
from valuecredit.store import StoreBusy, init_store, is_busy, writer_lock

T = TypeVar("T")

# a reader (a report, a backup's copy) with the file open: waits of 0.1 s doubling, about 100 s in all
CONNECT_DELAYS = tuple(0.1 * 2 ** i for i in range(10))


class Store(DuckDBResource):
    """The DuckDB file every asset reads and writes; schemas are created on first use. A run holds
    the store's writer lock from its first step to its last: a second writer is refused at once."""

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Generator["Store", None, None]:
        lock = writer_lock(self.database, join=True, run_id=context.run.run_id if context.run else None)
        try:
            lock.__enter__()
        except StoreBusy as exc:  # waiting would not help: the other writer holds it for a whole night
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        try:
            yield self
        finally:
            lock.__exit__(None, None, None)

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # dagster-duckdb's get_connection retries any I/O error for 100 s (a broken file too), and
        # closes its connection only when the step succeeds; here only a reader's lock is waited
        # for, and the connection is closed whatever happens
        for delay in (*CONNECT_DELAYS, None):
            try:
                con = duckdb.connect(self.database, config={"custom_user_agent": "dagster", **self.connection_config})
                break
            except duckdb.IOException as exc:
                if delay is None or not is_busy(exc):
                    raise
                time.sleep(delay)
        try:
            init_store(con)
            yield con
        finally:
            con.close()


def load_config(load: Callable[[str], T], path: str) -> T:
    """An operator's file (catalogue, products, pool, calendar, reason codes) loaded and validated; a
    broken one fails the step at once, naming the file: no retry can mend it."""
    try:
        return load(path)
    except ConfigError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


class LandingZone(dg.ConfigurableResource):
    """The folder where departments deliver files, with its manifest.csv."""

    path: str


class ProgressReporter(Protocol):
    def done(self, step: str, detail: str) -> None: ...


class SilentProgress:
    def done(self, step: str, detail: str) -> None:
        return None

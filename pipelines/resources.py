"""Resources: where the store, the landing zone, the configuration and the outputs are, and who
hears about progress. The environment is read once, by `resources()`, when the definitions are
built; each configuration file is loaded and validated once per run, by the first step that needs it."""

import os
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from lending.calendar import DEFAULT_OVERRIDES, WorkingDays
from lending.ledger.config import DEFAULT_POOL, PoolConfig, load_pool_config
from lending.products import DEFAULT_PRODUCTS, ProductCatalogue, load_products
from scoring.catalogue import DEFAULT_CATALOGUE, Catalogue, load_catalogue
from valuecredit.configfile import ConfigError
from valuecredit.store import StoreBusy, connect, init_store, is_busy, writer_lock

T = TypeVar("T")

# a reader (a report, a backup's copy) with the file open: waits of 0.1 s doubling, about 100 s in all
CONNECT_DELAYS = tuple(0.1 * 2 ** i for i in range(10))


class Store(DuckDBResource):
    """The DuckDB file every asset reads and writes; schemas are created on first use. A run holds
    the store's writer lock from its first step to its last: a second writer is refused at once.
    Within a run, the first step that connects opens the file and keeps it open until the run ends:
    each later step's connection shares that database instead of opening the file again and writing
    a checkpoint on close (138 connections, about 3.5 s of a small night). A step that only reads
    takes `read()`: the run's database when this process has it open (a second open of the same file
    with other settings is refused), else the file opened read-only."""

    _run_database: duckdb.DuckDBPyConnection | None = PrivateAttr(default=None)
    _in_run: bool = PrivateAttr(default=False)

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Generator["Store", None, None]:
        lock = writer_lock(self.database, join=True, run_id=context.run.run_id if context.run else None)
        try:
            lock.__enter__()
        except StoreBusy as exc:  # waiting would not help: the other writer holds it for a whole night
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        self._in_run = True
        try:
            yield self
        finally:
            self._in_run = False
            try:
                if self._run_database is not None:
                    self._run_database.close()  # the run's one checkpoint
            finally:
                self._run_database = None
                lock.__exit__(None, None, None)

    def _open(self) -> duckdb.DuckDBPyConnection:
        # dagster-duckdb's get_connection retries any I/O error for 100 s (a broken file too); here
        # only a reader's lock is waited for
        for delay in (*CONNECT_DELAYS, None):
            try:
                # background threads hand freed memory back to the system between steps: the run's
                # database outlives them, and the steps that follow need it for Python work
                con = duckdb.connect(self.database, config={"custom_user_agent": "dagster", "allocator_background_threads": True,
                                                            **self.connection_config})
                break
            except duckdb.IOException as exc:
                if delay is None or not is_busy(exc):
                    raise
                time.sleep(delay)
        try:
            init_store(con)
        except BaseException:
            con.close()
            raise
        return con

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        # dagster-duckdb closes its connection only when the step succeeds; this one is closed
        # whatever happens (an open transaction is rolled back)
        if self._in_run:
            if self._run_database is None:
                self._run_database = self._open()
            con = self._run_database.cursor()
        else:
            con = self._open()
        try:
            yield con
        except BaseException:
            self._drop_if_invalidated()
            raise
        finally:
            con.close()

    @contextmanager
    def read(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._in_run and self._run_database is not None:
            con = self._run_database.cursor()
        else:
            con = connect(self.database, read_only=True)
        try:
            yield con
        finally:
            con.close()

    def _drop_if_invalidated(self) -> None:
        """After a fatal error DuckDB refuses every further statement on that database: the next
        step, or a retry, opens the file again (replaying its log) instead of failing in turn."""
        if self._run_database is None:
            return
        try:
            self._run_database.execute("SELECT 1")
        except duckdb.Error:
            try:
                self._run_database.close()
            except duckdb.Error:
                pass
            self._run_database = None


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


class _ConfigFiles(dg.ConfigurableResource):
    """Operator's files, each loaded and validated by the first step of a run that reads it; the
    steps after it get the same object (one version of each file for the whole night)."""

    _loaded: dict = PrivateAttr(default_factory=dict)

    def _once(self, load: Callable[[str], Any], path: str) -> Any:
        if path not in self._loaded:
            self._loaded[path] = load_config(load, path)
        return self._loaded[path]


class CatalogueFile(_ConfigFiles):
    """The operator's indicator catalogue (YAML)."""

    path: str = str(DEFAULT_CATALOGUE)

    def load(self) -> Catalogue:
        return self._once(load_catalogue, self.path)


class ProductsFile(_ConfigFiles):
    """The partner banks' product catalogue (YAML)."""

    path: str = str(DEFAULT_PRODUCTS)

    def load(self) -> ProductCatalogue:
        return self._once(load_products, self.path)


class PoolFiles(_ConfigFiles):
    """The pool parameters and the working-day overrides."""

    pool: str = str(DEFAULT_POOL)
    calendar_overrides: str = str(DEFAULT_OVERRIDES)

    def pool_config(self) -> PoolConfig:
        return self._once(load_pool_config, self.pool)

    def calendar(self) -> WorkingDays:
        return self._once(WorkingDays.load, self.calendar_overrides)


class ModelRegistry(dg.ConfigurableResource):
    """The folder of registered model versions, with the champion pin and the decision log."""

    path: str = "data/models"


class PublicationFolder(dg.ConfigurableResource):
    """Where each bank's folder of published files lives."""

    path: str = "data/publish"


class ReportsFolder(dg.ConfigurableResource):
    """Where the nightly reports go (a build folder: everything in it can be rendered again)."""

    path: str = "build/reports"
    # new leads rendered per bank per night: at provincial scale the first night makes every eligible
    # firm a new lead (hundreds of thousands); the rest are a `valuecredit report bank` away
    max_reports_per_bank: int = 200


class PartsFolder(dg.ConfigurableResource):
    """Where the firm partitions' Parquet parts go, by date (scratch: the merge step is what counts)."""

    path: str = "data/parts"
    partitions: int = 4


def resources(db: str | None = None, landing: str | None = None, progress=None,
              env: dict[str, str] | None = None) -> dict:
    """Every resource of the definitions: `db` and `landing` as given, else from the environment
    (VALUECREDIT_DB, VALUECREDIT_LANDING); outputs beside the store unless their own variable says
    where (VALUECREDIT_MODELS, _PUBLISH, _REPORTS, _PARTS); configuration files from VALUECREDIT_CATALOGUE,
    _PRODUCTS, _POOL, _CALENDAR, else `config/`."""
    env = dict(os.environ if env is None else env)
    db = db or env.get("VALUECREDIT_DB", "data/valuecredit.duckdb")
    beside = Path(db).parent
    # the default store's reports go to the repository's build/ (ignored by git); another store's beside it
    reports = "build/reports" if beside.resolve() == Path("data").resolve() else str(beside / "reports")
    return {
        "store": Store(database=db, connection_config={"memory_limit": env.get("VALUECREDIT_DUCKDB_MEMORY", "4GB")}),
        "landing": LandingZone(path=landing or env.get("VALUECREDIT_LANDING", "data/landing")),
        "progress": progress or SilentProgress(),
        "catalogue": CatalogueFile(path=env.get("VALUECREDIT_CATALOGUE", str(DEFAULT_CATALOGUE))),
        "pool_files": PoolFiles(pool=env.get("VALUECREDIT_POOL", str(DEFAULT_POOL)),
                                calendar_overrides=env.get("VALUECREDIT_CALENDAR", str(DEFAULT_OVERRIDES))),
        "products": ProductsFile(path=env.get("VALUECREDIT_PRODUCTS", str(DEFAULT_PRODUCTS))),
        "publish_folder": PublicationFolder(path=env.get("VALUECREDIT_PUBLISH", str(beside / "publish"))),
        "registry": ModelRegistry(path=env.get("VALUECREDIT_MODELS", str(beside / "models"))),
        "parts_folder": PartsFolder(path=env.get("VALUECREDIT_PARTS", str(beside / "parts")),
                                    partitions=int(env.get("VALUECREDIT_FIRM_PARTITIONS", "4"))),
        "reports_folder": ReportsFolder(path=env.get("VALUECREDIT_REPORTS", reports)),
    }


class ProgressReporter(Protocol):
    def done(self, step: str, detail: str) -> None: ...


class SilentProgress:
    def done(self, step: str, detail: str) -> None:
        return None

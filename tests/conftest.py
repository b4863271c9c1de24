import contextlib
import io
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
from filelock import FileLock

from data_contracts.contracts import CONTRACTS
from ingestion.ingest import ingest_source
from simulate import SimConfig, simulate
from tests.instance import nights_recorded_beside_the_store, record_nights_in_memory
from valuecredit.store import connect

# every night a test runs records itself beside its own store: a DAGSTER_HOME left in the shell would
# send all of them, from every worker, into one instance
os.environ.pop("DAGSTER_HOME", None)
# The test workers share the cores: LightGBM's OpenMP threads, spinning while they wait for work by
# default, then starve each other. Two trainings side by side took 442 s against 110 s with passive
# waiting (set before LightGBM loads its OpenMP runtime; the child processes inherit it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
record_nights_in_memory()  # see tests/instance.py

# The slowest modules first. Each test worker takes the next module as it finishes one (make test runs
# with --no-loadscope-reorder: pytest-xdist's own order, by number of tests, started the few long modules
# last, and the run ended with one worker alone on one of them).
SLOWEST_FIRST = ("tests/models/test_pd.py", "tests/pipelines/test_pipeline.py", "tests/end_to_end/test_crash_early_stages.py",
                 "tests/end_to_end/test_crash_late_stages.py", "tests/end_to_end/test_week_of_nights.py",
                 "tests/lending/test_publish.py", "tests/models/test_model_evaluate.py", "tests/lending/test_ledger.py",
                 "tests/scoring/test_incremental.py", "tests/ingestion/test_bad_input.py", "tests/core/test_recovery.py",
                 "tests/scoring/test_calibrate.py", "tests/lending/test_bank_gate.py", "tests/lending/test_access.py")


def pytest_xdist_auto_num_workers(config) -> int | None:
    """`-n auto` (make test): one worker more than pytest-xdist's own count of cores. While one waits on
    a night in a child process, on Chromium or on a shared universe, another's work fills the core
    (docs/DESIGN.md, "The tests"). PYTEST_XDIST_AUTO_NUM_WORKERS, when set, decides as it would."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from xdist.plugin import pytest_xdist_auto_num_workers as cores

    return cores(config) + 1


def pytest_collection_modifyitems(items) -> None:
    rank = {module: i for i, module in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: a module's own order kept


BUSINESS_DATE = date(2026, 11, 28)
END_PERIOD = "2026-10"


def built_once(tmp_path_factory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder `name`, made by `build(folder)` once for the whole session: the test workers
    (pytest-xdist) share it, the first to need it builds it under a lock, the others wait and read.
    What is built here is read-only to the tests: a test that changes it works on a copy."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "built_once"
    shared.mkdir(exist_ok=True)
    folder = shared / name
    with FileLock(str(folder) + ".lock"):
        if not (folder / ".complete").exists():
            shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way is made again
            folder.mkdir()
            build(folder)
            (folder / ".complete").touch()
    return folder


@pytest.fixture
def recorded_beside_the_store():
    """This test's nights are recorded where `valuecredit run` records them: the instance the UI reads."""
    with nights_recorded_beside_the_store():
        yield


@pytest.fixture(scope="session")
def faulty_landing(tmp_path_factory) -> Path:
    # seed 9: its random row faults leave every small source under the 5 % quarantine limit, so the
    # only failing contracts are those of the four file-level faults the tests are about
    return built_once(tmp_path_factory, "landing_faulty", lambda out: simulate(
        SimConfig(firms=1500, seed=9, months=18, end_period=END_PERIOD, fault_rate=0.01, out=out)))


@pytest.fixture(scope="session")
def clean_landing(tmp_path_factory) -> Path:
    # 27 months: growth indicators need two 12-month windows, or the score's missing-rate check fails
    return built_once(tmp_path_factory, "landing_clean", lambda out: simulate(
        SimConfig(firms=800, seed=3, months=27, end_period=END_PERIOD, fault_rate=0.0, out=out)))


def redeliver(landing: Path, file: str, frame, delivered_on: date) -> None:
    """A department delivers `file` again, as `frame` (CSV), on `delivered_on`: the manifest says so."""
    import hashlib

    import pandas as pd

    frame.to_csv(landing / file, index=False)
    raw = (landing / file).read_bytes()
    manifest = pd.read_csv(landing / "manifest.csv", dtype=str)
    i = manifest.index[manifest.file == file][0]
    manifest.loc[i, ["sha256", "bytes", "rows", "delivered_on"]] = [hashlib.sha256(raw).hexdigest(), str(len(raw)),
                                                                    str(len(frame)), delivered_on.isoformat()]
    manifest.to_csv(landing / "manifest.csv", index=False)


def ingest_all(landing: Path, db: Path, business_date: date = BUSINESS_DATE, sources: tuple[str, ...] | None = None):
    con = connect(db)
    outcomes = {c.source: ingest_source(con, landing, c.source, business_date) for c in CONTRACTS
                if sources is None or c.source in sources}
    return con, outcomes


@pytest.fixture(scope="session")
def faulty_store(faulty_landing, tmp_path_factory):
    db = tmp_path_factory.mktemp("store") / "faulty.duckdb"
    con, outcomes = ingest_all(faulty_landing, db)
    yield con, outcomes, db
    con.close()


@pytest.fixture(scope="session")
def loan_book(tmp_path_factory):
    """16,000 firms over 36 months: enough loans with closed windows to train and validate PD models.
    The landing zone and the ingested store are built once; each worker gets its own copy of the store."""

    def build(folder: Path) -> None:
        simulate(SimConfig(firms=16_000, seed=11, months=36, end_period=END_PERIOD, fault_rate=0.0,
                           out=folder / "landing"))
        con, _ = ingest_all(folder / "landing", folder / "cal.duckdb")
        con.close()

    built = built_once(tmp_path_factory, "loan_book", build)
    db = tmp_path_factory.mktemp("cal_store") / "cal.duckdb"
    shutil.copy(built / "cal.duckdb", db)
    con = connect(db)
    yield con, built / "landing", db
    con.close()


@pytest.fixture(scope="session")
def first_night(loan_book, tmp_path_factory) -> Path:
    """`valuecredit run --date BUSINESS_DATE` on a new store over the loan book's landing zone: the
    first night, which trains the first champion. Run once for the session (the PD tests check it,
    the notebooks read it): `run.duckdb` with the models, publications and reports beside it,
    `stdout.txt` what the command printed, `exit_code` its code. Tests work on a copy."""
    from pipelines.cli import main

    def build(folder: Path) -> None:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(["run", "--date", BUSINESS_DATE.isoformat(), "--landing", str(loan_book[1]),
                         "--db", str(folder / "run.duckdb")])
        (folder / "stdout.txt").write_text(printed.getvalue(), encoding="utf-8")
        (folder / "exit_code").write_text(str(code))

    return built_once(tmp_path_factory, "first_night", build)


def trained(loan_book, tmp_path_factory, as_of: date, over: date | None = None) -> Path:
    """The folder of a model trained on the loan book as of `as_of` by `valuecredit model train`,
    validated against the simulator's truth too (the truth changes the report, not the model):
    `models/`, the registry (the report in the version's `validation.json`), and `stdout.txt`, what
    the command printed. `over`: into a copy of the registry trained as of that date, its champion
    in force (a retraining: the decision log then holds both decisions). Training is deterministic,
    so each is made once for the session; read-only to the tests."""
    from pipelines.cli import main
    from scoring.catalogue import DEFAULT_CATALOGUE

    landing = loan_book[1]

    def train(folder: Path) -> None:
        if over is not None:
            shutil.copytree(trained(loan_book, tmp_path_factory, over) / "models", folder / "models")
        store = folder / "store.duckdb"
        shutil.copy(landing.parent / "cal.duckdb", store)  # as built: no test has changed it
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            code = main(["model", "train", "--db", str(store), "--registry", str(folder / "models"), "--date",
                         as_of.isoformat(), "--catalogue", str(DEFAULT_CATALOGUE),
                         "--truth", str(landing / "_truth" / "loans.parquet")])
        assert code == 0, printed.getvalue()
        (folder / "stdout.txt").write_text(printed.getvalue(), encoding="utf-8")
        for path in folder.glob("store.duckdb*"):
            path.unlink()

    return built_once(tmp_path_factory, f"trained_{as_of}" + (f"_over_{over}" if over else ""), train)


def trained_version(folder: Path) -> str:
    """The version the `trained` folder's training registered (its champion unless not promoted)."""
    from models.registry import last_decision

    return last_decision(folder / "models")["version"]


def validation_report(folder: Path) -> dict:
    """The validation report of the version a `trained` folder's training registered: what `retrain`
    returned, as JSON keeps it."""
    return json.loads((folder / "models" / trained_version(folder) / "validation.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def trained_on(loan_book, tmp_path_factory):
    """trained_on(as_of, over=None): see `trained`."""
    return lambda as_of, over=None: trained(loan_book, tmp_path_factory, as_of, over)


@dataclass
class ScoredNight:
    con: duckdb.DuckDBPyConnection
    registry: Path
    report: dict  # the champion's validation report: the validation and the promotion decision
    model: object  # the pinned champion


@pytest.fixture(scope="session")
def clean_store(clean_landing, tmp_path_factory) -> Path:
    """The 800-firm universe's deliveries ingested as of BUSINESS_DATE, once for the session. Read-only: copy it."""

    def build(folder: Path) -> None:
        con, _ = ingest_all(clean_landing, folder / "store.duckdb")
        con.close()

    return built_once(tmp_path_factory, "clean_store", build) / "store.duckdb"


@pytest.fixture(scope="session")
def first_clean_night(clean_landing, tmp_path_factory) -> Path:
    """The folder of the 800-firm universe's first night, on 2026-11-27, with no PD model: the store
    (`night.duckdb`), the publications, reports and personal-data reads log beside it. Run once for
    the session; read-only: copy the folder."""

    def build(folder: Path) -> None:
        from pipelines.run import run_nightly

        assert run_nightly(date(2026, 11, 27), clean_landing, folder / "night.duckdb").succeeded

    return built_once(tmp_path_factory, "first_clean_night", build)


@pytest.fixture
def after_first_clean_night(first_clean_night, tmp_path) -> Path:
    """This test's copy of `first_clean_night`'s folder (`tmp_path/store`): a store with no PD model
    whose next night is 2026-11-28."""
    shutil.copytree(first_clean_night, tmp_path / "store")
    return tmp_path / "store"


@pytest.fixture(scope="session")
def score_loan_book(loan_book, tmp_path_factory):
    """score_loan_book(work, dates, products=None): the loan book's universe scored (`_score`)."""
    def score(work: Path, dates: tuple[date, ...], **options) -> ScoredNight:
        loan_book[0].execute("CHECKPOINT")  # the worker's store as a file, to copy
        return _score(loan_book[2], loan_book, work, dates, tmp_path_factory, **options)

    return score


@pytest.fixture(scope="session")
def score_universe(clean_store, loan_book, tmp_path_factory):
    """score_universe(work, dates, products=None): the 800-firm universe scored (`_score`) with the loan
    book's champion, its own loan book being too short to train on: the tests that need a night with PDs
    and not a large or a learnable book."""
    return lambda work, dates, **options: _score(clean_store, loan_book, work, dates, tmp_path_factory, **options)


def _score(store: Path, loan_book, work: Path, dates: tuple[date, ...], tmp_path_factory, products=None) -> ScoredNight:
    """A copy of `store` in `work` with a champion trained on the loan book as of the last date
    (`trained`), and for each date the indicators, scores and PDs (and eligibility, given a product
    catalogue)."""
    from lending.eligibility import build_eligibility
    from models.nightly import load_reason_codes, pinned_model, score_pd
    from scoring.catalogue import load_catalogue
    from scoring.score import build_indicators, build_scores

    db = work / "night.duckdb"
    shutil.copy(store, db)
    con, cat, registry = connect(db), load_catalogue(), work / "models"
    folder = trained(loan_book, tmp_path_factory, max(dates))
    shutil.copytree(folder / "models", registry)
    report = validation_report(folder)
    model, codes = pinned_model(registry), load_reason_codes()
    for d in dates:
        build_indicators(con, d)
        build_scores(con, d, cat)
        score_pd(con, d, cat, model, codes)
        if products is not None:
            build_eligibility(con, d, products)
    return ScoredNight(con, registry, report, model)

import copy
import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from data_contracts.contracts import CONTRACTS
from ingestion.ingest import ingest_source
from simulate import SimConfig, simulate
from valuecredit.store import connect

# every night a test runs records itself beside its own store: a DAGSTER_HOME left in the shell would
# send all of them, from every worker, into one instance
os.environ.pop("DAGSTER_HOME", None)

BUSINESS_DATE = date(2026, 11, 28)
END_PERIOD = "2026-10"


@pytest.fixture(scope="session")
def faulty_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing_faulty")
    # seed 9: its random row faults leave every small source under the 5 % quarantine limit, so the
    # only failing contracts are those of the four file-level faults the tests are about
    simulate(SimConfig(firms=1500, seed=9, months=18, end_period=END_PERIOD, fault_rate=0.01, out=out))
    return out


@pytest.fixture(scope="session")
def clean_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing_clean")
    # 27 months: growth indicators need two 12-month windows, or the score's missing-rate check fails
    simulate(SimConfig(firms=800, seed=3, months=27, end_period=END_PERIOD, fault_rate=0.0, out=out))
    return out


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


def ingest_all(landing: Path, db: Path, business_date: date = BUSINESS_DATE):
    con = connect(db)
    outcomes = {c.source: ingest_source(con, landing, c.source, business_date) for c in CONTRACTS}
    return con, outcomes


@pytest.fixture(scope="session")
def faulty_store(faulty_landing, tmp_path_factory):
    db = tmp_path_factory.mktemp("store") / "faulty.duckdb"
    con, outcomes = ingest_all(faulty_landing, db)
    yield con, outcomes, db
    con.close()


@pytest.fixture(scope="session")
def loan_book(tmp_path_factory):
    """16,000 firms over 36 months: enough loans with closed windows to train and validate PD models."""
    landing = tmp_path_factory.mktemp("cal_landing")
    simulate(SimConfig(firms=16_000, seed=11, months=36, end_period=END_PERIOD, fault_rate=0.0, out=landing))
    db = tmp_path_factory.mktemp("cal_store") / "cal.duckdb"
    con, _ = ingest_all(landing, db)
    yield con, landing, db
    con.close()


@dataclass
class ScoredNight:
    con: duckdb.DuckDBPyConnection
    registry: Path
    report: dict  # what retrain returned: the validation and the promotion decision
    model: object  # the pinned champion


@pytest.fixture(scope="session")
def score_loan_book(loan_book, tmp_path_factory):
    """score_loan_book(work, dates, with_truth=False, products=None): see `_score_loan_book`."""
    trained: dict = {}
    return lambda work, dates, **options: _score_loan_book(loan_book, work, dates, trained=trained,
                                                           cache=tmp_path_factory.mktemp("trained"), **options)


def _score_loan_book(loan_book, work: Path, dates: tuple[date, ...], with_truth: bool = False,
                     products=None, trained: dict | None = None, cache: Path | None = None) -> ScoredNight:
    """A copy of the loan book's store in `work` with a champion trained as of the last date, and
    for each date the indicators, scores and PDs (and eligibility, given a product catalogue).
    Training reads the store and writes only the registry, and is deterministic: a registry trained
    on the same date before (kept in `trained`) is copied instead of trained again."""
    from lending.eligibility import build_eligibility
    from models.nightly import load_reason_codes, pinned_model, score_pd
    from models.train import retrain
    from scoring.catalogue import load_catalogue
    from scoring.score import build_indicators, build_scores

    con0, landing, store = loan_book
    con0.execute("CHECKPOINT")
    db = work / "night.duckdb"
    shutil.copy(store, db)
    con, cat, registry = connect(db), load_catalogue(), work / "models"
    key = (max(dates), with_truth)
    if trained is not None and key in trained:
        pristine, report = trained[key]
        shutil.copytree(pristine, registry)
        report = copy.deepcopy(report)
    else:
        report = retrain(con, cat, registry, max(dates), landing / "_truth" / "loans.parquet" if with_truth else None)
        if trained is not None:
            shutil.copytree(registry, cache / "models")
            trained[key] = (cache / "models", copy.deepcopy(report))
    model, codes = pinned_model(registry), load_reason_codes()
    for d in dates:
        build_indicators(con, d)
        build_scores(con, d, cat)
        score_pd(con, d, cat, model, codes)
        if products is not None:
            build_eligibility(con, d, products)
    return ScoredNight(con, registry, report, model)

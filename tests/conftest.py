from datetime import date
from pathlib import Path

import pytest

from data_contracts.contracts import CONTRACTS
from simulate import SimConfig, simulate
from valuecredit.ingest import ingest_source
from valuecredit.store import connect

BUSINESS_DATE = date(2026, 11, 28)
END_PERIOD = "2026-10"


@pytest.fixture(scope="session")
def faulty_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing_faulty")
    simulate(SimConfig(firms=1500, seed=7, months=18, end_period=END_PERIOD, fault_rate=0.01, out=out))
    return out


@pytest.fixture(scope="session")
def clean_landing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("landing_clean")
    # 27 months: growth indicators need two 12-month windows, or the score's missing-rate check fails
    simulate(SimConfig(firms=800, seed=3, months=27, end_period=END_PERIOD, fault_rate=0.0, out=out))
    return out


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

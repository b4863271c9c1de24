"""The crash tests' shared parts: the stages a night is killed in, the store's tables and output
files as compared, and the test itself (`killed_and_rerun`), run on the session's two nights
(`crash_nights` in conftest.py). The stages are split over two test files so that the test workers
share them."""

import contextlib
import hashlib
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.run import run_nightly
from tests.instance import nights_recorded_beside_the_store

# the second night takes in October's deliveries from the 6th on: loans (so postings), power, social insurance, tax
DAY1, DAY2 = date(2026, 11, 5), date(2026, 11, 28)
# every kind of stage; three of the 23 sources (the registry has the most statements, loans feed the ledger)
EARLY_STAGES = ["registry", "loans", "tax_monthly", "deadlines", "ledger", "firm_coverage", "indicators", "commercial_value"]
LATE_STAGES = ["pd", "early_warnings", "eligibility", "publication", "audit pack", "bank report batches", "portfolio reports"]
# killed and run again with the nights recorded in the Dagster instance beside the store, as `valuecredit run`
# records them (the others in memory, tests/instance.py): the run the kill interrupted stays there, started
RECORDED_STAGES = ("ledger", "publication")
SCHEMAS = ("scores", "decisions", "ledger")
OUTPUTS = ("publish", "reports")


def tables(folder: Path) -> dict:
    """Every table of the scores, decisions and ledger schemas and of every bank's schema, in order."""
    con = duckdb.connect(str(folder / "night.duckdb"), read_only=True)
    try:
        names = [f"{s}.{t}" for s, t in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
            "AND (table_schema IN ? OR table_schema LIKE 'bank_%') ORDER BY ALL", [list(SCHEMAS)]).fetchall()]
        return {n: con.execute(f"SELECT * FROM {n} ORDER BY ALL").df() for n in names}
    finally:
        con.close()


def same_tables(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[n].equals(b[n]) for n in a)


def files(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def killed_and_rerun(nights, night_in_child, clean_landing, stage: str, tmp_path: Path) -> None:
    """A copy of the first night's store, its second night killed in the middle of `stage`: what the
    crash left is consistent, and the night run again ends as the uninterrupted one did."""
    first, second, stages, before, after, outputs = nights
    start, end = stages[stage]
    assert end >= start, f"{stage} ran no statement"
    crashed = tmp_path / "killed"
    shutil.copytree(first, crashed)
    in_instance = stage in RECORDED_STAGES
    assert night_in_child(crashed, clean_landing, (start + end) // 2, tmp_path / "unused.log", in_instance) == -9  # SIGKILL

    # what the crash left: each bank's LATEST folder complete, all banks' tables from one night, no half posting
    published = {n: t for n, t in tables(crashed).items() if n.startswith("bank_")}
    assert any(same_tables(published, {n: t for n, t in night.items() if n.startswith("bank_")})
               for night in (before, after))
    for bank in (crashed / "publish").iterdir():
        day = (bank / "LATEST").read_text().strip()
        reference = first if day == DAY1.isoformat() else second
        assert files(bank / day) == files(reference / "publish" / bank.name / day)
    con = duckdb.connect(str(crashed / "night.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM (SELECT posting_id FROM ledger.postings GROUP BY posting_id "
                       "HAVING sum(debit_fen) <> sum(credit_fen))").fetchone()[0] == 0
    # every posting recorded by its night's run, and no run without its postings
    posted, recorded = con.execute("SELECT (SELECT count(DISTINCT posting_id) FROM ledger.postings), "
                                   "(SELECT sum(postings) FROM ledger.runs)").fetchone()
    assert posted == recorded
    con.close()

    # re-run: the same state as the night that was never interrupted
    with nights_recorded_beside_the_store() if in_instance else contextlib.nullcontext():
        assert run_nightly(DAY2, clean_landing, crashed / "night.duckdb").succeeded
    if in_instance:  # the killed run is in the instance as it was left, started and never ended; the re-run beside it
        with dg.DagsterInstance.from_config(str(crashed / "dagster_home")) as instance:
            assert sorted(r.status.value for r in instance.get_runs()) == ["STARTED", "SUCCESS"]
    assert same_tables(tables(crashed), after)
    for folder in OUTPUTS:
        assert files(crashed / folder) == outputs[folder]
    shutil.rmtree(crashed)

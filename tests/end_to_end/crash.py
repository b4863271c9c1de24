"""The crash tests' shared parts: the stages a night is killed in, the store's tables and output
files as compared, and the test itself (`killed_in_turn`), run on the session's two nights
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
# the runs killed in these stages are recorded in the Dagster instance beside the store, as `valuecredit run`
# records them, and so is the chain's last run (the others in memory, tests/instance.py): the instance then
# holds each killed run as the kill left it, started, and the last one, succeeded
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


def killed_in_turn(nights, night_in_child, clean_landing, to_kill: list[str], tmp_path: Path) -> None:
    """A copy of the first night's store, its second night killed in the middle of each stage of
    `to_kill` in turn, each run after a kill being the next one killed, then run to the end: after
    each kill what the crash left is consistent, and the last run ends as the uninterrupted night did.
    One night run again per kill would repeat a whole night for each stage; here a stage is killed
    in a night that starts from the previous crash's leftovers, which the run must also recover from."""
    first, second, stages, before, after, outputs = nights
    order = list(stages)
    crashed = tmp_path / "killed"
    shutil.copytree(first, crashed)
    for n, stage in enumerate(sorted(to_kill, key=order.index)):
        start, end = stages[stage]
        assert end >= start, f"{stage} ran no statement"
        previous = order[order.index(stage) - 1] if order.index(stage) else None
        # the first kill counts from the start of the night, which is the uninterrupted night's until then;
        # a later one from the end of the stage before (tests/crash_harness.py says why)
        kill = str((start + end) // 2) if n == 0 else f"{previous}+{(start + end) // 2 - stages[previous][1]}"
        log = tmp_path / f"killed_in_{n}.log"
        code = night_in_child(crashed, clean_landing, kill, log, stage in RECORDED_STAGES)
        assert code == -9, f"the night to be killed in {stage} ended with {code} ({log}.out)"  # SIGKILL
        landed = log.read_text().splitlines()[-1]
        assert landed.startswith("killed at") and landed.endswith(f" after {previous or ''}"), \
            f"the kill meant for {stage} came elsewhere: {landed!r}"
        left_consistent(crashed, (first, second), (before, after), stage)

    # run to the end: the same state as the night that was never interrupted
    recorded = [s for s in to_kill if s in RECORDED_STAGES]
    with nights_recorded_beside_the_store() if recorded else contextlib.nullcontext():
        assert run_nightly(DAY2, clean_landing, crashed / "night.duckdb").succeeded
    if recorded:  # each killed run is in the instance as it was left, started and never ended; the last beside them
        with dg.DagsterInstance.from_config(str(crashed / "dagster_home")) as instance:
            assert sorted(r.status.value for r in instance.get_runs()) == ["STARTED"] * len(recorded) + ["SUCCESS"]
    assert same_tables(tables(crashed), after)
    for folder in OUTPUTS:
        assert files(crashed / folder) == outputs[folder]
    shutil.rmtree(crashed)


def left_consistent(crashed: Path, nights: tuple[Path, Path], their_tables: tuple[dict, dict], stage: str) -> None:
    """What a crash left: each bank's LATEST folder complete, all banks' tables from one night, no half posting."""
    published = {n: t for n, t in tables(crashed).items() if n.startswith("bank_")}
    assert any(same_tables(published, {n: t for n, t in night.items() if n.startswith("bank_")})
               for night in their_tables), f"killed in {stage}: the banks' tables are from no one night"
    for bank in (crashed / "publish").iterdir():
        day = (bank / "LATEST").read_text().strip()
        reference = nights[0] if day == DAY1.isoformat() else nights[1]
        assert files(bank / day) == files(reference / "publish" / bank.name / day), f"killed in {stage}: {bank.name}"
    con = duckdb.connect(str(crashed / "night.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM (SELECT posting_id FROM ledger.postings GROUP BY posting_id "
                           "HAVING sum(debit_fen) <> sum(credit_fen))").fetchone()[0] == 0, f"killed in {stage}"
        # every posting recorded by its night's run, and no run without its postings
        posted, recorded = con.execute("SELECT (SELECT count(DISTINCT posting_id) FROM ledger.postings), "
                                       "(SELECT sum(postings) FROM ledger.runs)").fetchone()
        assert posted == recorded, f"killed in {stage}: {posted} postings, {recorded} recorded by their runs"
    finally:
        con.close()

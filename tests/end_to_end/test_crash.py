"""A night killed (SIGKILL) in the middle of each stage in turn, then re-run, ends with the same
tables, ledger, publication and reports, byte for byte, as a night that was never interrupted; and
what the crash leaves behind is never a partial publication or a partial posting.

The killed night runs in a child process (`tests.crash_harness`), which counts the run's DuckDB
statements and kills itself just before the chosen one: the midpoint of the stage's statements, so
inside its transaction, between two sources, between two banks' files or two reports."""

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipelines.run import run_nightly

# the second night takes in October's deliveries from the 6th on: loans (so postings), power, social insurance, tax
DAY1, DAY2 = date(2026, 11, 5), date(2026, 11, 28)
# every kind of stage; three of the 23 sources (the registry has the most statements, loans feed the ledger)
STAGES = ["registry", "loans", "tax_monthly", "deadlines", "ledger", "firm_coverage", "indicators", "commercial_value",
          "pd", "early_warnings", "eligibility", "publication", "audit pack", "bank report batches",
          "portfolio reports"]
SCHEMAS = ("scores", "decisions", "ledger")
OUTPUTS = ("publish", "reports")


@pytest.fixture(scope="module")
def night_in_child():
    """night_in_child(folder, landing, kill_at, log): the second night in a child process, its exit
    status (-9: killed). The children are forked by one server (`tests.crash_harness --serve`)."""
    server = subprocess.Popen([sys.executable, "-m", "tests.crash_harness", "--serve"], cwd=Path(__file__).parents[2],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline() == "ready\n"

    def night(folder: Path, landing: Path, kill_at: int, log: Path) -> int:
        server.stdin.write(json.dumps([DAY2.isoformat(), str(landing), str(folder / "night.duckdb"), str(kill_at), str(log)]) + "\n")
        server.stdin.flush()
        return int(server.stdout.readline())

    yield night
    server.stdin.close()
    server.wait(timeout=60)


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


@pytest.fixture(scope="module")
def nights(clean_landing, score_loan_book, night_in_child, tmp_path_factory):
    """The store after a first night (with a champion trained on the loan book), and the same store
    after an uninterrupted second night, whose statements were counted stage by stage."""
    work = tmp_path_factory.mktemp("crash")
    (work / "training").mkdir()
    trained = score_loan_book(work / "training", (DAY1,))
    trained.con.close()
    first = work / "first"
    first.mkdir()
    shutil.copytree(trained.registry, first / "models")
    assert run_nightly(DAY1, clean_landing, first / "night.duckdb").succeeded
    second = work / "second"
    shutil.copytree(first, second)
    assert night_in_child(second, clean_landing, 0, work / "statements.log") == 0
    stages, statement, start = {}, 0, 1
    for line in (work / "statements.log").read_text().splitlines():
        if line.startswith("statement "):
            statement = int(line.split()[1])
        else:
            stages[line.removeprefix("done ")] = (start, statement)
            start = statement + 1
    return work, first, second, stages, tables(first), tables(second), {f: files(second / f) for f in OUTPUTS}


@pytest.mark.parametrize("stage", STAGES)
def test_a_night_killed_in_the_middle_of_a_stage_and_rerun_ends_byte_identical(nights, night_in_child, clean_landing,
                                                                                  stage):
    work, first, second, stages, before, after, outputs = nights
    start, end = stages[stage]
    assert end >= start, f"{stage} ran no statement"
    crashed = work / f"killed-in-{stage.replace(' ', '_')}"
    shutil.copytree(first, crashed)
    assert night_in_child(crashed, clean_landing, (start + end) // 2, work / "unused.log") == -9  # SIGKILL

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
    assert run_nightly(DAY2, clean_landing, crashed / "night.duckdb").succeeded
    assert same_tables(tables(crashed), after)
    for folder in OUTPUTS:
        assert files(crashed / folder) == outputs[folder]
    shutil.rmtree(crashed)

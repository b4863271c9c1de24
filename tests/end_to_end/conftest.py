import json
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.run import run_nightly
from tests.conftest import built_once
from tests.end_to_end.crash import DAY1, DAY2, OUTPUTS, files, tables

NIGHT_TIMEOUT = 900  # seconds: a small night takes well under a minute


@pytest.fixture(scope="session")
def night_in_child():
    """night_in_child(folder, landing, kill, log, recorded=False): the second night in a child process,
    killed where `kill` says (tests.crash_harness), and its exit status (-9: killed). The children are
    forked by one server (`tests.crash_harness --serve`); `recorded`: the night is recorded in the
    Dagster instance beside the store, not in memory."""
    server = subprocess.Popen([sys.executable, "-m", "tests.crash_harness", "--serve"], cwd=Path(__file__).parents[2],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline() == "ready\n"

    def night(folder: Path, landing: Path, kill: int | str, log: Path, recorded: bool = False) -> int:
        request = [DAY2.isoformat(), str(landing), str(folder / "night.duckdb"), str(kill), str(log)]
        server.stdin.write(json.dumps(request + (["recorded"] if recorded else [])) + "\n")
        server.stdin.flush()
        if not select.select([server.stdout], [], [], NIGHT_TIMEOUT)[0]:  # a night that hangs fails, never blocks the rest
            server.kill()
            raise AssertionError(f"no answer from the night in a child within {NIGHT_TIMEOUT} s (its output: {log}.out)")
        answer = server.stdout.readline()
        assert answer, f"the crash harness's server died (exit {server.poll()})"
        return int(answer)

    yield night
    server.stdin.close()
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()


@pytest.fixture(scope="session")
def crash_nights(clean_landing, trained_on, night_in_child, tmp_path_factory):
    """The store after a first night (with a champion trained on the loan book), and the same store
    after an uninterrupted second night, whose statements were counted stage by stage; made once for
    the session and read-only to the tests: (first, second, stages, their tables, the second's files)."""

    def build(work: Path) -> None:
        first = work / "first"
        first.mkdir()
        shutil.copytree(trained_on(DAY2) / "models", first / "models")
        assert run_nightly(DAY1, clean_landing, first / "night.duckdb").succeeded
        shutil.copytree(first, work / "second")
        assert night_in_child(work / "second", clean_landing, 0, work / "statements.log") == 0

    work = built_once(tmp_path_factory, "crash_nights", build)
    stages, statement, start = {}, 0, 1
    for line in (work / "statements.log").read_text().splitlines():
        if line.startswith("statement "):
            statement = int(line.split()[1])
        else:
            stages[line.removeprefix("done ")] = (start, statement)
            start = statement + 1
    first, second = work / "first", work / "second"
    return first, second, stages, tables(first), tables(second), {f: files(second / f) for f in OUTPUTS}

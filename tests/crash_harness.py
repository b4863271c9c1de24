"""Run one night in this process and SIGKILL it just before a chosen DuckDB statement: the crash tests'
harness (`python -m tests.crash_harness DATE LANDING DB KILL LOG`). With `--serve` it is a fork server:
it imports the project and builds the contracts' GX suites once (about 8 s of each night in a fresh
interpreter), then reads one request per line on stdin (the same arguments as a JSON list), runs each in a
forked child and answers its exit status, negative for a signal as `subprocess` does. The server
itself never runs LightGBM or DuckDB, so each child starts with neither's threads.

Every asset reaches the store through `Store.connect`; here that yields a proxy which counts the
statements of the whole run and kills the process at the chosen one, wherever in a stage that falls
(inside a transaction, between the legs of a posting, between two banks' files). KILL is N, the N-th
statement of the run, or `STAGE+K`, the K-th statement after STAGE finished: a night run again after a
crash need not run the uninterrupted night's statements before a stage (what the crash left decides,
for one, whether the night is incremental), so its kill is counted from the end of the stage before.
N = 0 kills nothing. LOG gets one line per statement and per finished stage, and the stage after
which the kill came, from which the test picks its KILL and checks where it landed."""

import json
import os
import signal
import sys
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from pipelines.resources import Store
from pipelines.run import run_nightly
from tests.instance import record_nights_beside_the_store, record_nights_in_memory


class Tripwire:
    statements, kill_at, last_done = 0, 0, ""  # the run's: one night per process

    def __init__(self, con, log):
        self._con, self._log = con, log

    def _tick(self) -> None:
        Tripwire.statements += 1
        if Tripwire.statements == Tripwire.kill_at:
            self._log.write(f"killed at statement {Tripwire.statements} after {Tripwire.last_done}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        self._log.write(f"statement {Tripwire.statements}\n")

    def execute(self, *args, **kwargs):
        self._tick()
        return self._con.execute(*args, **kwargs)

    def sql(self, *args, **kwargs):
        self._tick()
        return self._con.sql(*args, **kwargs)

    def executemany(self, *args, **kwargs):
        self._tick()
        return self._con.executemany(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._con, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._con.__exit__(*exc)


class StageLog:
    """Progress reporter that writes each finished stage into the log, between its statements, and
    arms the tripwire `after` statements past the end of `stage`."""

    def __init__(self, log, stage: str | None = None, after: int = 0):
        self._log, self._stage, self._after = log, stage, after

    def done(self, step: str, detail: str) -> None:
        Tripwire.last_done = step
        self._log.write(f"done {step}\n")
        if step == self._stage:
            Tripwire.kill_at = Tripwire.statements + self._after


def main(argv: list[str]) -> int:
    business_date, landing, db, kill, log_path = date.fromisoformat(argv[0]), Path(argv[1]), Path(argv[2]), \
        argv[3], argv[4]
    log = open(log_path, "w", buffering=1)
    stage, plus, after = kill.rpartition("+")
    if plus:  # STAGE+K: armed when STAGE is done
        progress = StageLog(log, stage, int(after))
    else:
        Tripwire.kill_at, progress = int(kill), StageLog(log)
    connect = Store.connect

    @contextmanager
    def counted(self):
        with connect(self) as con:
            yield Tripwire(con, log)

    Store.connect = counted
    summary = run_nightly(business_date, landing, db, progress=progress)
    return 0 if summary.succeeded else 1


def serve() -> None:
    from data_contracts.contracts import CONTRACTS
    from data_contracts.expectations import _validator

    record_nights_in_memory()  # as the tests' own nights are (tests/instance.py)
    for contract in CONTRACTS:
        _validator(contract)
    print("ready", flush=True)
    for request in sys.stdin:
        pid = os.fork()
        if pid == 0:  # the child: its output goes beside its log, never into the server's answers on stdout
            args = json.loads(request)
            out = os.open(args[4] + ".out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, 1)
            os.dup2(out, 2)
            code = 2
            try:
                if args[5:] == ["recorded"]:  # in the instance beside the store, as `valuecredit run` records
                    record_nights_beside_the_store()
                code = main(args[:5])
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        sys.exit(main(sys.argv[1:]))

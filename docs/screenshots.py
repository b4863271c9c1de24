"""Screenshots for reviewers, in docs/screenshots/: a firm's score report (zh), the programme's
portfolio report (zh) and Dagster's page of the score asset, all from the store `make run` wrote.

    make screenshots        (after `make run`; --db for another store)

The reports are rendered from the store as the CLI would; the Dagster page is served by
`dagster-webserver` from the instance the nights are recorded in (beside the store), on a free port,
and taken by the same headless Chromium the reports use.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lending.ledger.config import load_pool_config  # noqa: E402
from pipelines.resources import resources  # noqa: E402
from reports.browser import load  # noqa: E402
from reports.firm import tables, write_firm_report  # noqa: E402
from reports.portfolio import write_portfolio  # noqa: E402
from scoring.catalogue import load_catalogue  # noqa: E402
from valuecredit.store import connect  # noqa: E402


def a_firm_banks_would_read(con, as_of) -> str:
    """An authorised firm with a PD that some product finds eligible, the largest limit first: the
    report a bank's risk officer opens most."""
    row = con.execute("""
        SELECT p.uscc FROM decisions.eligibility_pairs p JOIN decisions.eligibility_firms f USING (uscc, as_of)
        WHERE p.as_of = ? AND p.eligible AND f.authorised ORDER BY p.computed_limit_fen DESC, p.uscc LIMIT 1""",
                      [as_of]).fetchone()
    if row is None:  # no model yet, so nobody is eligible: the best-scored firm instead
        row = con.execute("SELECT uscc FROM scores.commercial_value WHERE as_of = ? ORDER BY total DESC, uscc LIMIT 1",
                          [as_of]).fetchone()
    return row[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dagster_home(db: Path) -> Path:
    """The instance the store's nights are recorded in (as `pipelines.run.recorded_in` chooses it)."""
    return Path(os.environ.get("DAGSTER_HOME") or db.parent / "dagster_home").resolve()


def dagster_page(db: Path, shot: Path, asset_path: str, log: Path) -> None:
    """Serve the store's Dagster instance, mark the first-visit dialog seen (it would cover the page),
    and take the asset's page. The server runs in its own process group, stopped whatever happens."""
    import dagster as dg

    home = dagster_home(db)
    if not (home / "dagster.yaml").exists() or not dg.DagsterInstance.from_config(str(home)).get_runs(limit=1):
        raise SystemExit(f"{home} records no night of {db}: run `make run` first")
    port, env = free_port(), dict(os.environ, DAGSTER_HOME=str(home), VALUECREDIT_DB=str(db), PYTHONPATH=str(ROOT))
    env.setdefault("VALUECREDIT_LANDING", str(db.parent / "landing"))
    # started in the instance's folder: a store's folder holds reports/ and models/, which would shadow the packages
    with open(log, "wb") as out:
        server = subprocess.Popen([str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1",
                                   "-p", str(port), "-m", "pipelines.definitions"], cwd=home, env=env,
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    raise SystemExit("dagster-webserver stopped before it served a page:\n"
                                     + log.read_text(errors="replace")[-2000:]) from None
                time.sleep(1)
        else:
            raise SystemExit("dagster-webserver did not answer within 2 minutes:\n" + log.read_text(errors="replace")[-2000:])
        request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": "mutation { setNuxSeen }"}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30)
        load(f"{base}/assets/{asset_path}", shot, width=1600, height=1000, wait_ms=20_000)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default=str(ROOT / "data" / "valuecredit.duckdb"))
    p.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = p.parse_args()
    db, out = Path(args.db).resolve(), Path(args.out)
    if not db.exists():
        raise SystemExit(f"{db} does not exist: run `make run` first")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a cancelled run still stops its web server
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="vc-screenshots-"))
    # the operator's files the store's nights use (VALUECREDIT_CATALOGUE, _POOL, else config/)
    in_force = resources(str(db))
    try:
        con = connect(db, read_only=True)
        try:
            if not {"scores.commercial_value", "decisions.eligibility_pairs"} <= tables(con):
                raise SystemExit(f"{db} holds no scored night: run `make run` first")
            as_of = con.execute("SELECT max(as_of) FROM scores.commercial_value").fetchone()[0]
            firm = a_firm_banks_would_read(con, as_of)
            cat = load_catalogue(in_force["catalogue"].path)
            report = write_firm_report(con, firm, as_of, cat, work / "firm", "zh")
            portfolio = write_portfolio(con, as_of, work / "portfolio", None, "zh", cat,
                                        load_pool_config(in_force["pool_files"].pool))
        finally:
            con.close()
        load(report, out / "firm_report_zh.png", width=1240, height=1754)
        load(portfolio, out / "portfolio_report_zh.png", width=1240, height=1754)
        dagster_page(db, out / "dagster_asset_commercial_value.png", "scores/commercial_value", work / "webserver.log")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in sorted(p.name for p in out.glob("*.png")):
        print(out / name)


if __name__ == "__main__":
    main()

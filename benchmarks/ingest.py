"""Ingestion at provincial scale: simulate N firms x 36 months, then ingest everything once.

Writes benchmarks/results/ingest.json with wall time and peak memory (RSS of the process that did
the work, measured by the OS) for the simulation, for DuckDB reading every landing file once (the
floor), and for the full ingestion with contracts. Run by `make bench`, never by CI.

    python -m benchmarks.ingest [--firms 1000000] [--work benchmarks/work]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def store_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The arguments of a benchmark that runs on the store an earlier one left: --db, --date, --repeats."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--db", default=str(Path(__file__).parent / "work" / "bench.duckdb"))
    p.add_argument("--date", default="2026-11-28")
    p.add_argument("--repeats", type=int, default=3)
    return p


def parse_store_args(p: argparse.ArgumentParser, first: str) -> argparse.Namespace:
    """Parsed arguments, refusing a store that is not there yet; `first` says which benchmarks make it."""
    args = p.parse_args()
    if not Path(args.db).exists():
        raise SystemExit(f"{args.db} does not exist: run {first} first (make bench runs them in order)")
    return args


def machine(note: str = "") -> str:
    """The machine a result was measured on, as it reports itself: architecture, cores, memory."""
    try:
        kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
        memory = f"{kib / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError, IndexError):
        memory = "memory unknown"
    return f"{platform.machine()}, {os.cpu_count()} cores, {memory}" + (f", {note}" if note else "")


def write_result(name: str, result: dict, leave_out: tuple[str, ...] = ("runs",)) -> Path:
    """benchmarks/results/<name>, headed by the command, the commit and the machine that produced it,
    and the figures on the terminal without the per-run detail."""
    from models.registry import code_version

    command = f"python -m benchmarks.{Path(sys.argv[0]).stem} {' '.join(sys.argv[1:])}".strip()
    result = {"command": result.get("command", command), "commit": result.get("commit", code_version()),
              "machine": result.get("machine", machine()), **result}
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / name
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in leave_out}, indent=1, ensure_ascii=False))
    return out


def _child(code: str) -> dict:
    """Run `code` in a fresh interpreter; return its JSON output plus wall time and its own peak RSS."""
    started = time.perf_counter()
    # CPU seconds against wall seconds say how busy the 2 cores were (2x wall: both, all the time)
    code += ("\nimport resource as _r\n_u = _r.getrusage(_r.RUSAGE_SELF)\n"
             "print(json.dumps(dict(out, peak_rss_gib=round(_u.ru_maxrss / 2**20, 2), "
             "cpu_seconds=round(_u.ru_utime + _u.ru_stime, 1))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    last = proc.stdout.strip().splitlines()[-1]
    out = json.loads(last[last.index("{"):])  # DuckDB's progress bar may share the line
    out.update(seconds=round(wall, 1))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--firms", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=36)
    p.add_argument("--work", default=str(Path(__file__).parent / "work"))
    p.add_argument("--reuse-landing", action="store_true",
                   help="keep the landing zone (and its simulation figures) from the last run in --work")
    p.add_argument("--landing", help="ingest this landing zone instead of simulating one (its manifest says what it holds)")
    args = p.parse_args()
    work = Path(args.work)
    landing, db = work / "landing", work / "bench.duckdb"
    sim_file = work / "simulation.json"
    business_date = date(2026, 11, 28)
    if args.landing:
        import pandas as pd

        landing = Path(args.landing)
        work.mkdir(parents=True, exist_ok=True)
        db.unlink(missing_ok=True)
        manifest = pd.read_csv(landing / "manifest.csv")
        sim = {"landing": str(landing), "files": len(manifest), "rows": int(manifest["rows"].sum())}
        if (config := landing / "_truth" / "config.json").exists():
            sim.update(json.loads(config.read_text()))
            args.firms, args.months = int(sim["firms"]), int(sim["months"])
    elif args.reuse_landing and sim_file.exists():
        sim = json.loads(sim_file.read_text())
        db.unlink(missing_ok=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        sim = _simulate(args, landing)
        sim_file.write_text(json.dumps(sim))
    print("simulate", sim, flush=True)
    run_stages(args, landing, db, sim, business_date)


def _simulate(args, landing: Path) -> dict:
    return _child(f"""
import json; from simulate import SimConfig, simulate
s = simulate(SimConfig(firms={args.firms}, seed=1, months={args.months}, end_period='2026-10', out={str(landing)!r}))
out = {{"files": s.files, "rows": s.rows, "loans": s.loans}}""")


def read_once_floor(landing: Path) -> dict:
    """DuckDB reading every landing file once (counting rows): the floor any ingestion is compared with."""
    floor = _child(f"""
import json, duckdb, pandas as pd
m = pd.read_csv({str(landing / 'manifest.csv')!r})
con = duckdb.connect()
n = 0
for fmt, group in m.groupby('format'):
    files = [{str(landing)!r} + '/' + f for f in group.file]
    if fmt == 'parquet':
        n += con.execute(f"SELECT count(*) FROM read_parquet({{files!r}}, union_by_name=true)").fetchone()[0]
    else:
        for enc, g in group.groupby('encoding'):
            fs = [{str(landing)!r} + '/' + f for f in g.file]
            if enc == 'gbk':  # DuckDB cannot read GBK without an extension: transcode, as ingestion does
                for f in fs:
                    with open(f + '.u8', 'w', encoding='utf-8') as out_file:
                        out_file.write(open(f, 'rb').read().decode('gbk'))
                    n += con.execute("SELECT count(*) FROM read_csv(?, all_varchar=true)", [f + '.u8']).fetchone()[0]
            else:
                n += con.execute(f"SELECT count(*) FROM read_csv({{fs!r}}, all_varchar=true, union_by_name=true)").fetchone()[0]
out = {{"rows_read": int(n)}}""")
    for p_ in landing.rglob("*.u8"):
        p_.unlink()
    return floor


def run_stages(args, landing: Path, db: Path, sim: dict, business_date: date) -> None:
    floor = read_once_floor(landing)
    print("read-once floor", floor, flush=True)

    ingest = _child(f"""
import json, time
from datetime import date
from data_contracts.contracts import CONTRACTS
from ingestion.ingest import ingest_source, check_source
from valuecredit.store import connect
con = connect({str(db)!r})
stages, loaded, quarantined = {{}}, 0, 0
for c in CONTRACTS:
    t = time.perf_counter()
    o = ingest_source(con, {str(landing)!r}, c.source, date.fromisoformat({business_date.isoformat()!r}))
    ok = check_source(con, c.source, date.fromisoformat({business_date.isoformat()!r})).passed
    stages[c.source] = round(time.perf_counter() - t, 2)
    loaded += o.rows_loaded
    quarantined += sum(o.quarantined_by_rule.values())
out = {{"rows_loaded": loaded, "rows_quarantined": quarantined, "seconds_by_source": stages}}""")
    print("ingest", ingest, flush=True)

    result = {
        "firms": args.firms, "months": args.months,
        "simulation": sim, "read_once_floor": floor, "ingestion": ingest,
        "ingestion_vs_floor": round(ingest["seconds"] / max(floor["seconds"], 0.1), 2),
        "ingestion_cores_busy": round(ingest["cpu_seconds"] / max(ingest["seconds"], 0.1), 2),
        "targets": {"ingestion_seconds": 180, "ingestion_peak_gib": 6},
        "note": "each stage runs in its own process; peak_rss_gib is that process's maximum resident set",
    }
    out = write_result("ingest.json" if args.firms == 1_000_000 else f"ingest_{args.firms}.json", result, leave_out=())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

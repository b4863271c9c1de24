"""Ingestion at provincial scale: simulate N firms x 36 months, then ingest everything once.

Writes benchmarks/results/ingest.json with wall time and peak memory (RSS of the process that did
the work, measured by the OS) for the simulation, for DuckDB reading every landing file once (the
floor), and for the full ingestion with contracts. Run by `make bench`, never by CI.

    python -m benchmarks.ingest [--firms 1000000] [--work benchmarks/work]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _child(code: str) -> dict:
    """Run `code` in a fresh interpreter; return its JSON output plus wall time and peak RSS."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out.update(seconds=round(wall, 1), peak_rss_children_gib=round(peak_kib / 2**20, 2))
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--firms", type=int, default=1_000_000)
    p.add_argument("--months", type=int, default=36)
    p.add_argument("--work", default=str(Path(__file__).parent / "work"))
    args = p.parse_args()
    work = Path(args.work)
    landing, db = work / "landing", work / "bench.duckdb"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    business_date = date(2026, 11, 28)

    sim = _child(f"""
import json; from simulate import SimConfig, simulate
s = simulate(SimConfig(firms={args.firms}, seed=1, months={args.months}, end_period='2026-10', out={str(landing)!r}))
print(json.dumps({{"files": s.files, "rows": s.rows, "loans": s.loans}}))""")
    print("simulate", sim, flush=True)

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
                    t = open(f, 'rb').read().decode('gbk')
                    n += con.execute("SELECT count(*) FROM read_csv(?, all_varchar=true)", [f + '.u8']).fetchone()[0] if open(f + '.u8', 'w').write(t) else 0
            else:
                n += con.execute(f"SELECT count(*) FROM read_csv({{fs!r}}, all_varchar=true, union_by_name=true)").fetchone()[0]
print(json.dumps({{"rows_read": int(n)}}))""")
    print("read-once floor", floor, flush=True)
    for p_ in landing.rglob("*.u8"):
        p_.unlink()

    ingest = _child(f"""
import json, time
from datetime import date
from data_contracts.contracts import CONTRACTS
from valuecredit.ingest import ingest_source, check_source
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
print(json.dumps({{"rows_loaded": loaded, "rows_quarantined": quarantined, "seconds_by_source": stages}}))""")
    print("ingest", ingest, flush=True)

    result = {
        "firms": args.firms, "months": args.months, "machine": f"{platform.machine()}, 2 cores, 24 GiB",
        "simulation": sim, "read_once_floor": floor, "ingestion": ingest,
        "ingestion_vs_floor": round(ingest["seconds"] / max(floor["seconds"], 0.1), 2),
        "targets": {"ingestion_seconds": 180, "ingestion_peak_gib": 6},
        "note": "peak_rss_children_gib is the running maximum over child processes, so the ingestion figure "
                "is max(simulation, floor, ingestion) unless ingestion is the largest.",
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("ingest.json" if args.firms == 1_000_000 else f"ingest_{args.firms}.json")
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

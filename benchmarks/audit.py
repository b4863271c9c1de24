"""The regulator's audit pack of a decided night: computed afresh, then with the loan book's outcomes by
segment read from the cache (a night with no new loan-book file), each pack in its own process.

The first run writes into an empty reports folder (nothing cached); the next `--repeats` runs read
the cache it left. Every cached pack must be the first one, byte for byte (the harness stops
otherwise). Wall time, peak memory and the ratio go to benchmarks/results/audit.json.

    python -m benchmarks.audit --db STORE --date D [--repeats 3]
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import tempfile
from pathlib import Path

from benchmarks.ingest import _child, parse_store_args, store_parser, write_result

STAGE = """
import json, time
from datetime import date
from pathlib import Path
from valuecredit.store import connect
from scoring.catalogue import load_catalogue
from reports.audit import audit_pack
con = connect({db!r}, read_only=True)
t = time.perf_counter()
path = audit_pack(con, date.fromisoformat({day!r}), Path({registry!r}), load_catalogue(), Path({out!r}))
out = {{"pack_seconds": round(time.perf_counter() - t, 1), "bytes": path.stat().st_size}}
"""


def main() -> None:
    p = store_parser()
    p.add_argument("--registry", help="the model registry (default: models/ beside the store)")
    args = parse_store_args(p, "a `valuecredit run` night with a PD model")
    registry = args.registry or str(Path(args.db).parent / "models")
    out = Path(tempfile.mkdtemp(prefix="audit-", dir=Path(args.db).parent))
    try:
        runs = []
        for i in range(args.repeats + 1):
            runs.append(_child(STAGE.format(db=args.db, day=args.date, registry=registry, out=str(out))) | {
                "cached": i > 0})
            runs[-1]["pack_sha256"] = hashlib.sha256((out / "audit" / args.date / "audit_pack.html").read_bytes()).hexdigest()
            if runs[-1]["pack_sha256"] != runs[0]["pack_sha256"]:
                raise SystemExit(f"run {i}: the pack read from the cache differs from the one computed afresh")
            print("run", i, runs[-1], flush=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    cached = [r["pack_seconds"] for r in runs if r["cached"]]
    result = {
        "store": str(args.db), "as_of": args.date,
        "repeats": args.repeats, "afresh_seconds": runs[0]["pack_seconds"],
        "cached_seconds_median": statistics.median(cached),
        "cached_against_afresh": round(statistics.median(cached) / runs[0]["pack_seconds"], 3),
        "afresh_peak_rss_gib": runs[0]["peak_rss_gib"], "cached_peak_rss_gib_max": max(r["peak_rss_gib"] for r in runs[1:]),
        "identical_pages": len({r["pack_sha256"] for r in runs}) == 1,
        "runs": runs,
    }
    write_result("audit.json", result)


if __name__ == "__main__":
    main()

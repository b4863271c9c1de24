"""Scoring on partitions of firms, against the single run, on the store `benchmarks.nightly` leaves.

Measures, each in its own process on a copy of the store:
1. the single run: `build_indicators` + `build_scores` (what the nightly job does);
2. the same work cut into K partitions by district (`scoring.partitions`), each partition alone,
   then the merge (loading the parts);
3. the K partitions run W at a time in parallel processes (read-only connections), then the merge.
The split says what a cluster would gain: the partitions' work against the single run's, and the
merge that stays serial. Writes benchmarks/results/partitions.json.

    python -m benchmarks.partitions [--db benchmarks/work/nightly/night.duckdb] [--partitions 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks.ingest import _child, write_result

SINGLE = """
import json, time
from datetime import date
from valuecredit.store import connect
from scoring.catalogue import load_catalogue
from scoring.score import build_indicators, build_scores
con = connect({db!r})
d = date.fromisoformat({day!r})
t = time.perf_counter(); build_indicators(con, d); build_scores(con, d, load_catalogue())
out = {{"work_seconds": round(time.perf_counter() - t, 2)}}
"""

PARTITION = """
import json, time
from datetime import date
from pathlib import Path
import duckdb
from scoring.partitions import compute_partition, plan_partitions
from scoring.catalogue import load_catalogue
con = duckdb.connect({db!r}, read_only=True, config={{"memory_limit": {memory!r}, "threads": {threads}}})
d = date.fromisoformat({day!r})
part = [p for p in plan_partitions(con, d, {k}) if p.name == {name!r}][0]
t = time.perf_counter(); rows = compute_partition(con, d, load_catalogue(), part, Path({parts!r}))
out = {{"work_seconds": round(time.perf_counter() - t, 2), "districts": len(part.districts), **rows}}
"""

MERGE = """
import json, time
from datetime import date
from pathlib import Path
from valuecredit.store import connect
from scoring.partitions import merge_partitions, plan_partitions
from scoring.catalogue import load_catalogue
con = connect({db!r})
d = date.fromisoformat({day!r})
t = time.perf_counter()
s = merge_partitions(con, d, load_catalogue(), Path({parts!r}), plan_partitions(con, d, {k}))
out = {{"work_seconds": round(time.perf_counter() - t, 2), "firms": s.firms}}
"""


def _partition(args: tuple) -> dict:
    db, day, k, name, parts, threads, memory = args
    return _child(PARTITION.format(db=db, day=day, k=k, name=name, parts=parts, threads=threads, memory=memory))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default=str(Path(__file__).parent / "work" / "nightly" / "night.duckdb"))
    p.add_argument("--date", default="2026-11-28")
    p.add_argument("--partitions", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    source = Path(args.db)
    if not source.exists():
        raise SystemExit(f"{source} does not exist: run `python -m benchmarks.nightly` first")
    work = source.parent / "partitions"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    db = work / "copy.duckdb"
    names = [f"p{i:03d}" for i in range(args.partitions)]

    shutil.copy(source, db)
    single = _child(SINGLE.format(db=str(db), day=args.date))
    print("single", single, flush=True)

    # each partition alone, all cores to it: the work a partition is
    alone = {n: _partition((str(db), args.date, args.partitions, n, str(work / "parts_alone"), 2, "4GB")) for n in names}
    print("alone", alone, flush=True)
    merge_alone = _child(MERGE.format(db=str(db), day=args.date, parts=str(work / "parts_alone"), k=args.partitions))

    # W workers at a time, the cores shared between them
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        side_by_side = list(pool.map(_partition, [(str(db), args.date, args.partitions, n, str(work / "parts_parallel"),
                                                   max(1, 2 // args.workers), "3GB") for n in names]))
    parallel_wall = round(time.perf_counter() - started, 1)
    merge = _child(MERGE.format(db=str(db), day=args.date, parts=str(work / "parts_parallel"), k=args.partitions))

    partition_work = round(sum(a["work_seconds"] for a in alone.values()), 1)
    result = {
        "store": str(source), "business_date": args.date,
        "partitions": args.partitions, "workers": args.workers,
        "single_run": single,
        "partitions_alone": alone, "sum_of_partitions_seconds": partition_work,
        "largest_partition_seconds": max(a["work_seconds"] for a in alone.values()),
        "merge": merge_alone,
        "partitions_over_single": round(partition_work / max(single["work_seconds"], 0.01), 2),
        "merge_share_of_single": round(merge_alone["work_seconds"] / max(single["work_seconds"], 0.01), 2),
        "parallel": {"wall_seconds": parallel_wall, "runs": side_by_side, "merge": merge,
                     "total_seconds": round(parallel_wall + merge["seconds"], 1)},
        "note": "one run; work_seconds is measured inside each process, seconds includes its interpreter start",
    }
    write_result("partitions.json", result, leave_out=("partitions_alone", "parallel"))


if __name__ == "__main__":
    main()

"""The preview of a draft product catalogue at provincial scale: on the store `benchmarks.eligibility`
has decided (1,000,000 firms x 70 products), the catalogue in force as a draft (nothing changes) and
a draft that lowers one product's minimum grade (firms newly reached), each in its own process on the
store opened read-only, `--repeats` times; medians and peak memory go to benchmarks/results/preview.json.

    python -m benchmarks.preview [--db benchmarks/work/bench.duckdb] [--repeats 3]
"""

from __future__ import annotations

import statistics
from pathlib import Path

import yaml

from benchmarks.ingest import _child, parse_store_args, store_parser, write_result
from lending.products import load_products

TARGET_SECONDS = 60  # issue 23: a 1,000,000-firm store answers in under a minute

STAGE = """
import json, time
from datetime import date
from pathlib import Path
from valuecredit.store import connect
from lending.ledger.config import load_pool_config
from lending.products import load_products
from reports.preview import write_preview
con = connect({db!r}, read_only=True)
d = date.fromisoformat({as_of!r})
t = time.perf_counter()
r = write_preview(con, load_products({draft!r}), d, load_pool_config(), Path({out!r}), "zh")
seconds = time.perf_counter() - t
out = {{"preview_seconds": round(seconds, 1), "firms": r.figures["firms"], "products": len(r.figures["products"]),
        "newly_reached": sum(p["newly_reached"] for p in r.figures["products"]),
        "no_longer_reached": sum(p["no_longer_reached"] for p in r.figures["products"])}}
"""


def lowered_grade_draft(folder: Path) -> Path:
    """The catalogue in force with the first BBB product lowered to B."""
    doc = yaml.safe_load(load_products().path.read_text(encoding="utf-8"))
    next(p for p in doc["products"] if p["conditions"].get("min_grade") == "BBB")["conditions"]["min_grade"] = "B"
    path = folder / "draft-lower-grade.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def main() -> None:
    args = parse_store_args(store_parser(), "`python -m benchmarks.ingest`, `benchmarks.model` and `benchmarks.eligibility`")
    work = Path(args.db).parent
    drafts = {"unchanged": load_products().path, "lower_grade": lowered_grade_draft(work)}
    runs: dict[str, list[dict]] = {name: [] for name in drafts}
    for i in range(args.repeats):
        for name, draft in drafts.items():
            runs[name].append(_child(STAGE.format(db=args.db, as_of=args.date, draft=str(draft),
                                                  out=str(work / "preview" / name))))
            print("run", i, name, runs[name][-1], flush=True)
    result = {
        "as_of": args.date, "repeats": args.repeats,
        "firms": runs["unchanged"][0]["firms"], "products": runs["unchanged"][0]["products"],
        **{f"{name}_seconds_median": round(statistics.median(r["preview_seconds"] for r in rs), 1) for name, rs in runs.items()},
        "lower_grade_newly_reached": runs["lower_grade"][0]["newly_reached"],
        "peak_rss_gib_max": max(r["peak_rss_gib"] for rs in runs.values() for r in rs), "runs": runs,
    }
    slowest = max(result["unchanged_seconds_median"], result["lower_grade_seconds_median"])
    result["target"] = {"seconds": TARGET_SECONDS, "met": slowest < TARGET_SECONDS}
    write_result("preview.json", result)


if __name__ == "__main__":
    main()

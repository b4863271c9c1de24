"""An incremental night at provincial scale: 1 % of the firms with new data, against a full
recomputation of the same night, measured in the same run, and the two compared table by table.

It starts from the store `benchmarks.nightly` leaves (1,000,000 firms after one full night). The
next day's deliveries are a correction of the latest tax month for 1 % of the firms (every 100th),
major penalties for 0.1 % and changed registrations for 0.05 %, written as new files in a landing
zone that links to the original one. Two copies of the store then run that night with
`pipelines.run.run_nightly`, in child processes one after the other: incrementally (the default) and
in full (`full=...`, what `valuecredit run --full` does). Each stage's time comes from the run.

    python -m benchmarks.incremental [--store benchmarks/work/nightly/night.duckdb] [--landing ...] [--work DIR]
                                     [--out incremental.json]

Writes benchmarks/results/incremental.json (or --out). Target: the incremental night under 5 % of the full one.
"Identical" means every compared table's rows for the night; every file of every bank's folder for the
night (change files, manifest, early warnings, the full table where written) and LATEST, byte for byte;
and every bank's full table rebuilt from the incremental run's change files matching the SHA-256 the
full run published."""

from __future__ import annotations

import argparse
import json
import shutil
from datetime import timedelta
from pathlib import Path

import duckdb

from benchmarks.ingest import _child, write_result
from benchmarks.nightly import NIGHT, SOURCES_GROUP, group
from data_contracts.contracts import contract_for
from simulate.landing import deliver

COMPARED = ["features.indicators", "scores.negative_hits", "scores.commercial_value", "scores.peer_groups",
            "features.pd_inputs", "scores.pd", "scores.explanations", "scores.pd_importance", "scores.pd_stability",
            "decisions.eligibility_firms", "decisions.eligibility_pairs"]


def deliveries(store: Path, source_landing: Path, landing: Path, night, empty: bool = False) -> dict[str, int]:
    """The night's new files in `landing` (linking every original folder), and the manifest that lists
    them; none when `empty` (a night on which no department delivered anything: only the date moves)."""
    landing.mkdir(parents=True)
    for entry in source_landing.iterdir():
        if entry.name != "manifest.csv":
            (landing / entry.name).symlink_to(entry.resolve())
    shutil.copy(source_landing / "manifest.csv", landing / "manifest.csv")
    con = duckdb.connect(str(store), read_only=True)
    period = con.execute("SELECT max(period) FROM staging.tax_monthly").fetchone()[0]
    every = """(SELECT uscc FROM (SELECT uscc, row_number() OVER (ORDER BY uscc) AS n FROM staging.registry)
                WHERE n % {k} = {r})"""
    files = {
        "deltas/tax_monthly_corrections.parquet": ("tax_monthly", period, f"""
            SELECT * EXCLUDE (_file, _delivered_on) REPLACE (revenue_fen // 3 AS revenue_fen) FROM staging.tax_monthly
            WHERE period = '{period}' AND uscc IN {every.format(k=100, r=0)}"""),
        "deltas/penalties_new.csv": ("penalties", f"{night:%Y-%m}", f"""
            SELECT p.* REPLACE (f.uscc AS uscc, 'BENCH-' || f.uscc AS decision_no,
                                DATE '{night - timedelta(days=1)}' AS decided_on, 'major_safety' AS severity)
            FROM (SELECT * EXCLUDE (_file, _delivered_on) FROM staging.penalties ORDER BY ALL LIMIT 1) p
            CROSS JOIN {every.format(k=1000, r=7)} f"""),
        "deltas/registry_changes.csv": ("registry", f"{night:%Y-%m}", f"""
            SELECT * EXCLUDE (_file, _delivered_on) REPLACE (CASE WHEN size_class = '微型' THEN '小型' ELSE '微型' END
                   AS size_class) FROM staging.registry WHERE uscc IN {every.format(k=2000, r=3)}"""),
    }
    rows = {}
    for name, (source, per, select) in ({} if empty else files).items():
        frame = con.execute(f"{select} ORDER BY ALL").df()
        deliver(landing, contract_for(source), name, per, frame, night)
        rows[source] = len(frame)
    con.close()
    return rows


def differences(a: Path, b: Path, night) -> dict[str, int]:
    """Per table, the rows of the night in one store and not the other (both ways, with multiplicity)."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{a}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b}' AS b (READ_ONLY)")
    out = {}
    for t in COMPARED:
        one, other = (f"SELECT * FROM {s}.{t} WHERE as_of = DATE '{night}'" for s in ("a", "b"))
        out[t] = con.execute(f"SELECT (SELECT count(*) FROM ({one} EXCEPT ALL {other})) + "
                             f"(SELECT count(*) FROM ({other} EXCEPT ALL {one}))").fetchone()[0]
    con.close()
    return out


def publication_differences(a: Path, b: Path, night) -> dict[str, list[str]]:
    """Per bank, the files of the night's folder (and LATEST) that are not the same bytes in the two
    publication folders, and whether the night's full table rebuilt from `a`'s change files
    (`lending.delta.rebuild`, from the bank's last full table) is the table `b` published: a bank
    missing on one side is listed with "folder"."""
    import hashlib
    import tempfile

    from lending.delta import MANIFEST, rebuild

    out: dict[str, list[str]] = {}
    banks = sorted({p.name for side in (a, b) for p in side.iterdir() if p.is_dir() and not p.name.startswith(".")})
    with tempfile.TemporaryDirectory(prefix="valuecredit-bench-") as tmp:
        for bank in banks:
            one, other = a / bank / night.isoformat(), b / bank / night.isoformat()
            if not (one.is_dir() and other.is_dir()):
                out[bank] = ["folder"]
                continue
            names = sorted({p.name for p in one.iterdir()} | {p.name for p in other.iterdir()})
            differing = [n for n in names if not ((one / n).is_file() and (other / n).is_file()
                                                  and (one / n).read_bytes() == (other / n).read_bytes())]
            latest = [side / bank / "LATEST" for side in (a, b)]
            if len({path.read_bytes() if path.is_file() else None for path in latest}) > 1:
                differing.append("LATEST")
            rebuilt = rebuild(a / bank, night, None, Path(tmp) / bank)
            published = json.loads((other / MANIFEST).read_text(encoding="utf-8"))["table_sha256"]
            if hashlib.sha256(rebuilt.read_bytes()).hexdigest() != published:
                differing.append("rebuilt full table")
            out[bank] = differing
    return out


def main() -> None:
    from data_contracts.contracts import CONTRACTS

    work_default = Path(__file__).parent / "work"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=str(work_default / "nightly" / "night.duckdb"),
                   help="a store after a full night, its model registry beside it (default: what benchmarks.nightly left)")
    p.add_argument("--landing", default=str(work_default / "landing"), help="the landing zone that night read")
    p.add_argument("--work", default=str(work_default / "incremental"))
    p.add_argument("--out", default="incremental.json", help="the result file's name in benchmarks/results/")
    p.add_argument("--empty", action="store_true",
                   help="deliver nothing that night: what a night costs when no firm's data changed")
    args = p.parse_args()
    store, work = Path(args.store), Path(args.work)
    if not store.exists():
        raise SystemExit(f"{store}: no store: run `python -m benchmarks.nightly` first")
    con = duckdb.connect(str(store), read_only=True)
    last = con.execute("SELECT max(as_of) FROM features.indicators").fetchone()[0]
    firms = con.execute("SELECT count(*) FROM features.indicators WHERE as_of = ?", [last]).fetchone()[0]
    con.close()
    night = last + timedelta(days=1)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    delivered = deliveries(store, Path(args.landing), work / "landing", night, args.empty)
    print("delivered", delivered, flush=True)
    runs, dbs = {}, {}
    for mode, full in (("incremental", ""), ("full", "the benchmark's reference")):
        (work / mode).mkdir()
        shutil.copy(store, work / mode / "night.duckdb")
        shutil.copytree(store.parent / "models", work / mode / "models")
        if (store.parent / "publish").is_dir():  # the banks' earlier files: tonight's change files rest on them
            shutil.copytree(store.parent / "publish", work / mode / "publish", symlinks=True)
        dbs[mode] = work / mode / "night.duckdb"
        runs[mode] = _child(NIGHT.format(day=night.isoformat(), landing=str(work / "landing"), db=str(dbs[mode]),
                                         full=full))
        runs[mode]["stages"] = group(runs[mode].pop("stages"), {c.source for c in CONTRACTS})
        print(mode, runs[mode]["seconds"], "s", flush=True)
    con = duckdb.connect(str(dbs["incremental"]), read_only=True)
    plan = con.execute("SELECT previous, full_reason, changed, firms FROM meta.night_plans WHERE as_of = ?",
                       [night]).fetchone()
    con.close()
    if plan[1]:
        raise SystemExit(f"{night}: the night was not incremental ({plan[1]}); start from a store whose last night "
                         "was computed by this code, in the same month")
    diff = differences(dbs["incremental"], dbs["full"], night)
    published = publication_differences(work / "incremental" / "publish", work / "full" / "publish", night)
    inc, full = runs["incremental"]["seconds"], runs["full"]["seconds"]
    result = {
        "firms": firms, "night": night.isoformat(), "previous": str(plan[0]), "rows_delivered": delivered,
        "changed_firms": plan[2], "changed_share": round(plan[2] / max(plan[3], 1), 4),
        "incremental_seconds": inc, "full_seconds": full, "ratio": round(inc / full, 3),
        "stages": {name: {"incremental": runs["incremental"]["stages"].get(name, {}).get("seconds"),
                          "full": s["seconds"]} for name, s in runs["full"]["stages"].items()},
        "rows_differing_from_full": diff,
        "publication_files_differing_from_full": {bank: files for bank, files in published.items() if files},
        "banks_compared": len(published),
        "identical": not any(diff.values()) and not any(published.values()),
        "target_ratio": 0.05, "met": inc <= 0.05 * full,
        "runs": runs,
        "empty": args.empty,
        "note": f"same night, same store copied twice, run one after the other in child processes; "
                f"{SOURCES_GROUP} loads only the night's new files in both"
                + ("; nothing was delivered that night" if args.empty else ""),
    }
    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("incremental_seconds", "full_seconds", "ratio", "identical")}))


if __name__ == "__main__":
    main()

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
"Identical" means every compared table's rows for the night; every file of every bank's folder (each
night's, and LATEST, which must name the night on both sides) byte for byte, for every bank of the
catalogue; and every bank's full table rebuilt from the incremental run's change files matching the
SHA-256 the full run published. `--repeats N` runs each mode N times, alternately, and quotes medians."""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from statistics import median

import duckdb

from benchmarks.ingest import _child, write_result
from benchmarks.nightly import NIGHT, SOURCES_GROUP, group, median_stages
from data_contracts.contracts import contract_for
from lending.delta import MANIFEST, RebuildError, rebuild
from lending.products import load_products
from simulate.landing import deliver
from valuecredit.backup import file_sha256

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


def _files(root: Path) -> dict[str, Path]:
    """Every file under `root` by its path relative to it (what a crashed publication leaves aside,
    `.<date>.partial`, excluded); a symbolic link is listed as such: publication writes none."""
    found = {}
    for folder, dirs, names in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not (d.startswith(".") and d.endswith(".partial"))]
        for name in [*names, *(d for d in dirs if (here / d).is_symlink())]:
            path = here / name
            found[str(path.relative_to(root)) + (" (a symbolic link)" if path.is_symlink() else "")] = path
    return found


def publication_differences(a: Path, b: Path, night, banks: set[str]) -> dict[str, list[str]]:
    """Per bank (those of `banks`, the catalogue's, and any other folder on either side), what differs
    between the two publication folders: every file of the bank's folder (every night's, `LATEST`)
    byte for byte; the night's folder and `LATEST` naming it on both sides; and the night's full table
    rebuilt from `a`'s change files (`lending.delta.rebuild`, from the bank's last full table) against
    the SHA-256 `b` published. A rebuild or a manifest that fails is listed with its error, not raised."""
    if a.resolve() == b.resolve():
        raise SystemExit(f"{a} and {b} are the same folder: nothing would be compared")
    out: dict[str, list[str]] = {}
    found = {p.name for side in (a, b) if side.is_dir() for p in side.iterdir() if p.is_dir() and not p.name.startswith(".")}
    for bank in sorted(set(banks) | found):
        one, other = a / bank, b / bank
        if not (one.is_dir() and other.is_dir()):
            out[bank] = ["folder"]
            continue
        if one.resolve().is_relative_to(b.resolve()) or other.resolve().is_relative_to(a.resolve()):
            out[bank] = ["one side's folder is the other's"]
            continue
        files_one, files_other = _files(one), _files(other)
        differing = sorted(n for n in files_one.keys() | files_other.keys()
                           if n not in files_one or n not in files_other or n.endswith("(a symbolic link)")
                           or not filecmp.cmp(files_one[n], files_other[n], shallow=False))
        for side in (one, other):
            if not (side / night.isoformat() / MANIFEST).is_file():
                differing.append(f"no night folder in {side}")
            elif not (side / "LATEST").is_file() or (side / "LATEST").read_text(encoding="utf-8").strip() != night.isoformat():
                differing.append(f"LATEST of {side} does not name {night}")
        with tempfile.TemporaryDirectory(prefix="valuecredit-bench-") as tmp:
            try:
                rebuilt = rebuild(one, night, None, Path(tmp) / bank)
                published = json.loads((other / night.isoformat() / MANIFEST).read_text(encoding="utf-8"))["table_sha256"]
                if file_sha256(rebuilt) != published:
                    differing.append("rebuilt full table")
            except (RebuildError, OSError, ValueError, KeyError, TypeError) as exc:
                differing.append(f"rebuild: {type(exc).__name__}: {exc}")
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
    p.add_argument("--repeats", type=int, default=1,
                   help="run each mode this many times, alternating, each from a fresh copy (figures are medians)")
    args = p.parse_args()
    store, work = Path(args.store), Path(args.work)
    if not store.exists():
        raise SystemExit(f"{store}: no store: run `python -m benchmarks.nightly` first")
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    con = duckdb.connect(str(store), read_only=True)
    last = con.execute("SELECT max(as_of) FROM features.indicators").fetchone()[0]
    firms = con.execute("SELECT count(*) FROM features.indicators WHERE as_of = ?", [last]).fetchone()[0]
    con.close()
    night = last + timedelta(days=1)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    delivered = deliveries(store, Path(args.landing), work / "landing", night, args.empty)
    print("delivered", delivered, flush=True)
    runs: dict[str, list[dict]] = {"incremental": [], "full": []}
    dbs = {}
    for _ in range(args.repeats):
        for mode, full in (("incremental", ""), ("full", "the benchmark's reference")):
            shutil.rmtree(work / mode, ignore_errors=True)  # each run from a fresh copy; the last ones are compared
            (work / mode).mkdir()
            shutil.copy(store, work / mode / "night.duckdb")
            shutil.copytree(store.parent / "models", work / mode / "models")
            if (store.parent / "publish").is_dir():  # the banks' earlier files: tonight's change files rest on them
                shutil.copytree(store.parent / "publish", work / mode / "publish", symlinks=True)
            dbs[mode] = work / mode / "night.duckdb"
            run = _child(NIGHT.format(day=night.isoformat(), landing=str(work / "landing"), db=str(dbs[mode]),
                                      full=full))
            run["stages"] = group(run.pop("stages"), {c.source for c in CONTRACTS})
            runs[mode].append(run)
            print(mode, run["seconds"], "s", flush=True)
    con = duckdb.connect(str(dbs["incremental"]), read_only=True)
    plan = con.execute("SELECT previous, full_reason, changed, firms FROM meta.night_plans WHERE as_of = ?",
                       [night]).fetchone()
    con.close()
    if plan[1]:
        raise SystemExit(f"{night}: the night was not incremental ({plan[1]}); start from a store whose last night "
                         "was computed by this code, in the same month")
    diff = differences(dbs["incremental"], dbs["full"], night)
    banks = set(load_products().banks)
    published = publication_differences(work / "incremental" / "publish", work / "full" / "publish", night, banks)
    inc, full = (median(r["seconds"] for r in runs[mode]) for mode in ("incremental", "full"))
    medians = {mode: median_stages([r["stages"] for r in runs[mode]]) for mode in ("incremental", "full")}
    result = {
        "firms": firms, "night": night.isoformat(), "previous": str(plan[0]), "rows_delivered": delivered,
        "changed_firms": plan[2], "changed_share": round(plan[2] / max(plan[3], 1), 4),
        "repeats": args.repeats,
        "incremental_seconds": inc, "full_seconds": full, "ratio": round(inc / full, 3),
        "incremental_seconds_runs": [r["seconds"] for r in runs["incremental"]],
        "full_seconds_runs": [r["seconds"] for r in runs["full"]],
        "stages": {name: {mode: medians[mode].get(name, {}).get("seconds") for mode in medians}
                   for name in medians["full"]},
        "rows_differing_from_full": diff,
        "publication_files_differing_from_full": {bank: files for bank, files in published.items() if files},
        "banks_compared": sum(1 for files in published.values() if files != ["folder"]),
        "banks_in_catalogue": len(banks),
        "identical": not any(diff.values()) and not any(published.values()),
        "target_ratio": 0.05, "met": inc <= 0.05 * full,
        "runs": runs,
        "empty": args.empty,
        "note": f"same night, same store copied for every run, the modes run alternately in child processes "
                f"(figures are medians of {args.repeats}); {SOURCES_GROUP} loads only the night's new files in both"
                + ("; nothing was delivered that night" if args.empty else "")
                + "; the tables and files compared are those of the last run of each mode",
    }
    write_result(args.out, result)
    print(json.dumps({k: result[k] for k in ("incremental_seconds", "full_seconds", "ratio", "identical")}))


if __name__ == "__main__":
    main()

"""The per-firm scoring stages on partitions of firms: how they scale out.

A firm's indicators, negative-list hits and score depend on that firm's rows alone, so the firms can
be cut into partitions (by district, the unit the programme is administered in) and each partition
computed by its own worker. A worker needs only read access to the store: it writes its partition
as Parquet files (`<parts>/<partition>/{indicators,negative_hits,commercial_value}.parquet`,
written aside and renamed). One writer then loads every part into the store in one transaction
(what depends on all firms together, the peer percentiles, is computed when read). DuckDB allows one writer per
file but many readers, so workers run side by side; on a distributed engine the same SQL runs on
each partition's rows.

`tests/scoring/test_partitions.py` shows that two partitions give the same tables as the single run
(`build_indicators` and `build_scores`)."""

import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from scoring.catalogue import Catalogue
from scoring.changes import plan_night, record_stage
from scoring.score import (
    ScoreSummary,
    data_snapshot,
    ensure_tables,
    hits_made_with,
    replace_scores,
    score_select_sql,
    summarise_scores,
)
from scoring.sql import PointInTime, indicators_sql, negative_hits_sql
from valuecredit.sqltext import SQL, lit
from valuecredit.store import replace_date, transaction

PARTS = ("indicators", "negative_hits", "commercial_value")


@dataclass(frozen=True)
class FirmPartition:
    name: str
    districts: tuple[str, ...]


def plan_partitions(con: duckdb.DuckDBPyConnection, as_of: date, n: int) -> list[FirmPartition]:
    """The districts of the firms registered on the date, in `n` partitions of similar firm counts
    (largest district first, each into the partition with the fewest firms so far)."""
    if n < 1:
        raise ValueError(f"partitions: {n} is not a number of partitions (at least 1)")
    counts = con.execute(f"""SELECT district_code, count(*) AS n FROM {PointInTime('', as_of).rows('registry')}
                             GROUP BY district_code ORDER BY n DESC, district_code""").fetchall()
    load = [0] * n
    members: list[list[str]] = [[] for _ in range(n)]
    for district, firms in counts:
        i = load.index(min(load))
        load[i] += firms
        members[i].append(district)
    return [FirmPartition(f"p{i:03d}", tuple(sorted(m))) for i, m in enumerate(members) if m]


def partition_firms_sql(as_of: date, part: FirmPartition) -> SQL:
    """The partition's firms as the (uscc, as_of) relation the scoring SQL takes."""
    districts = ", ".join(lit(d) for d in part.districts)
    return (f"(SELECT DISTINCT uscc, DATE {lit(as_of.isoformat())} AS as_of FROM {PointInTime('', as_of).rows('registry')} "
            f"WHERE district_code IN ({districts}))")


def compute_partition(con: duckdb.DuckDBPyConnection, as_of: date, cat: Catalogue, part: FirmPartition,
                      parts: Path) -> dict[str, int]:
    """A worker: the partition's indicators, hits and scores, written as Parquet under `parts`.
    Reads the store only (a read-only connection will do); returns the row counts."""
    snapshot, _ = data_snapshot(con, as_of)
    firms = partition_firms_sql(as_of, part)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _part_indicators AS SELECT *, {lit(snapshot)} AS snapshot_id "
                f"FROM ({indicators_sql(firms, as_of, restrict=True)})")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _part_negative_hits AS "
                f"{negative_hits_sql(firms, cat.negative_rules, as_of, restrict=True)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _part_commercial_value AS "
                f"{score_select_sql(cat, '_part_indicators', '_part_negative_hits')}")
    final = Path(parts) / part.name
    aside = final.with_name(f".{part.name}.partial")
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir(parents=True)
    rows = {}
    for name in PARTS:
        con.execute(f"COPY (SELECT * FROM _part_{name} ORDER BY ALL) TO {lit(f'{aside / name}.parquet')} (FORMAT parquet)")
        rows[name] = con.execute(f"SELECT count(*) FROM _part_{name}").fetchone()[0]
        con.execute(f"DROP TABLE _part_{name}")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(aside, final)
    return rows


def merge_partitions(con: duckdb.DuckDBPyConnection, as_of: date, cat: Catalogue, parts: Path,
                     partitions: list[FirmPartition]) -> ScoreSummary:
    """The single writer: replace the date's indicators, hits and scores with every partition's
    part, in one transaction."""
    ensure_tables(con)
    missing = [p.name for p in partitions if not all((Path(parts) / p.name / f"{n}.parquet").exists() for n in PARTS)]
    if missing:
        raise ValueError(f"{parts}: no complete part for partition(s) {', '.join(missing)}: nothing was replaced")
    snapshot, files = data_snapshot(con, as_of)
    read = {n: "read_parquet([" + ", ".join(lit(Path(parts) / p.name / f"{n}.parquet") for p in partitions) + "])"
            for n in PARTS}
    with transaction(con):
        reason = "computed on partitions of firms"
        plan_night(con, as_of, full=reason)  # so that the next night may be incremental
        con.execute("INSERT OR REPLACE INTO meta.snapshots VALUES (?, ?, ?)", [as_of, snapshot, files])
        for table, name in (("features.indicators", "indicators"), ("scores.negative_hits", "negative_hits")):
            replace_date(con, table, as_of, f"SELECT * FROM {read[name]} ORDER BY uscc")
        record_stage(con, as_of, "hits", hits_made_with(cat), reason)
        replace_scores(con, as_of, f"SELECT * FROM {read['commercial_value']} ORDER BY uscc")
    return summarise_scores(con, as_of, cat)

"""The scoring stages on partitions of firms (by district) give the same tables as the single run."""

import shutil
from datetime import date

import duckdb
import pytest

from scoring.catalogue import load_catalogue
from scoring.partitions import compute_partition, merge_partitions, plan_partitions
from scoring.score import build_indicators, build_scores
from tests.conftest import ingest_all

DAY = date(2026, 11, 28)
TABLES = ["features.indicators", "scores.negative_hits", "scores.commercial_value", "scores.peer_groups",
          "meta.snapshots"]


def contents(con) -> dict:
    return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").df() for t in TABLES}


@pytest.fixture(scope="module")
def ingested(faulty_landing, tmp_path_factory):
    """A store with everything ingested (the faulty universe: it has negative-list hits and gaps)."""
    db = tmp_path_factory.mktemp("partitions") / "ingested.duckdb"
    con, _ = ingest_all(faulty_landing, db, DAY)
    con.close()
    return db


def test_two_partitions_by_district_give_the_tables_of_the_single_run(ingested, tmp_path):
    cat = load_catalogue()
    single, parted = tmp_path / "single.duckdb", tmp_path / "parted.duckdb"
    shutil.copy(ingested, single)
    shutil.copy(ingested, parted)
    con = duckdb.connect(str(single))
    build_indicators(con, DAY)
    expected = build_scores(con, DAY, cat)
    want = contents(con)
    con.close()

    reader = duckdb.connect(str(parted), read_only=True)  # the workers only read the store
    partitions = plan_partitions(reader, DAY, 2)
    assert len(partitions) == 2 and not set(partitions[0].districts) & set(partitions[1].districts)
    rows = [compute_partition(reader, DAY, cat, p, tmp_path / "parts") for p in partitions]
    reader.close()
    assert all(r["indicators"] > 100 for r in rows)  # both partitions hold a real share of the firms
    assert sum(r["indicators"] for r in rows) == expected.firms
    writer = duckdb.connect(str(parted))
    merged = merge_partitions(writer, DAY, cat, tmp_path / "parts", partitions)
    got = contents(writer)
    # the merge records what the hits were computed with: the next night may carry them
    assert writer.execute("SELECT hits_made_with, hits_full_reason FROM meta.night_plans WHERE as_of = ?",
                          [DAY]).fetchone() == (f"catalogue {cat.content_hash}", "computed on partitions of firms")
    writer.close()
    assert (merged.firms, merged.excluded, merged.hits, merged.snapshot_id) == \
        (expected.firms, expected.excluded, expected.hits, expected.snapshot_id)
    assert expected.hits > 0 and expected.excluded > 0
    for table in TABLES:
        assert want[table].equals(got[table]), table


def test_a_missing_part_replaces_nothing(ingested, tmp_path):
    cat = load_catalogue()
    db = tmp_path / "s.duckdb"
    shutil.copy(ingested, db)
    con = duckdb.connect(str(db))
    partitions = plan_partitions(con, DAY, 3)
    compute_partition(con, DAY, cat, partitions[0], tmp_path / "parts")  # only the first worker finished
    with pytest.raises(ValueError, match=f"no complete part for partition\\(s\\) {partitions[1].name}, "
                                         f"{partitions[2].name}: nothing was replaced"):
        merge_partitions(con, DAY, cat, tmp_path / "parts", partitions)
    assert con.execute("SELECT count(*) FROM meta.snapshots WHERE as_of = ?", [DAY]).fetchone()[0] == 0
    con.close()
    with pytest.raises(ValueError, match="0 is not a number of partitions"):
        plan_partitions(duckdb.connect(str(db), read_only=True), DAY, 0)


def test_the_dagster_scale_out_job_fans_out_one_step_per_partition_and_merges_to_the_same_tables(
        ingested, tmp_path):
    import dagster as dg

    import pipelines.scale_out as scale_out
    from pipelines.resources import CatalogueFile, PartsFolder, Store

    single, parted = tmp_path / "single.duckdb", tmp_path / "parted.duckdb"
    shutil.copy(ingested, single)
    shutil.copy(ingested, parted)
    con = duckdb.connect(str(single))
    build_indicators(con, DAY)
    build_scores(con, DAY, load_catalogue())
    want = contents(con)
    con.close()

    result = dg.materialize([scale_out.by_firm_partition], partition_key=DAY.isoformat(), resources={
        "store": Store(database=str(parted)), "catalogue": CatalogueFile(),
        "parts_folder": PartsFolder(path=str(tmp_path / "parts"), partitions=3)})
    assert result.success
    steps = {e.step_key for e in result.get_step_success_events()}
    assert {s for s in steps if s.startswith("scores__by_firm_partition.score_firm_partition")} == {
        f"scores__by_firm_partition.score_firm_partition[p00{i}]" for i in range(3)}
    con = duckdb.connect(str(parted), read_only=True)
    got = contents(con)
    con.close()
    for table in TABLES:
        assert want[table].equals(got[table]), table

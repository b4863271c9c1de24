"""Second-round attacks on what a person or a bank receives, held by small, fast tests: names masked
whatever blank pads them, spreadsheet text neutralised whatever its column type, a workbook cell never
over Excel's limit, a restore through a symlink, a backup inside what it copies."""

import datetime
import os
import zipfile

import duckdb
import pandas as pd
import pytest

from data_contracts.identifiers import mask_name
from data_contracts.personal import mask_sql
from lending.publish import EXCEL_CELL_CHARS, _within_excel, _workbook
from valuecredit.backup import BackupError, backup, restore
from valuecredit.spreadsheet import excel_csv, neutral_frame, neutral_sql

PADDED = {"张　三": "张*", "王 明": "王*", "李\t明": "李*", "张三明": "张*明", "欧阳 娜娜": "欧**娜", "张": "*",
          "张\u2003三": "张*", "张\u200c三": "张*", "张\ufeff三": "张*", "张\u202e三": "张*"}


def test_a_name_padded_with_blanks_is_masked_like_the_name_itself():
    """`张　三` (a two-character name padded with an ideographic space) was published as `张*三`."""
    assert {n: mask_name(n) for n in PADDED} == PADDED
    names = list(PADDED)
    masked = duckdb.execute(f"SELECT {mask_sql('n')} FROM unnest(?) t(n)", [names]).fetchall()
    assert [m for (m,) in masked] == [PADDED[n] for n in names]


def test_text_of_any_column_type_is_neutralised_for_a_spreadsheet():
    """A DuckDB ENUM (a pandas category) went out raw: `=1+1` ran in the bank's spreadsheet."""
    frame = duckdb.sql("SELECT '=1+1'::ENUM('=1+1', 'b') AS e, '=2+2' AS v, -5 AS n").df()
    assert isinstance(frame["e"].dtype, pd.CategoricalDtype)
    assert neutral_frame(frame).to_dict("records") == [{"e": "'=1+1", "v": "'=2+2", "n": -5}]
    con = duckdb.connect()  # and the SQL path every published CSV takes
    select = "SELECT '=1+1'::ENUM('=1+1', 'b') AS e, '=2+2' AS v, -5 AS n"
    assert con.execute(neutral_sql(con, select)).fetchall() == [("'=1+1", "'=2+2", -5)]


def test_a_large_csv_keeps_the_rows_in_the_order_of_its_select(tmp_path):
    """A CSV is written in its select's order, the same bytes every run: with the formula check spelt
    `IN (...)`, DuckDB joined each text column to the list and about one row in ten thousand of a
    bank's 166,000-row change file came out elsewhere, differently from run to run."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT printf('%09d', i) AS uscc, 'firm ' || i AS name, "
                "CASE WHEN i % 7 = 0 THEN '=x' ELSE 'y' END AS note, 'B01-P' || (i % 5) AS product, "
                "'shortfall text of some length ' || i AS shortfalls, i AS n FROM range(400000) r(i) ORDER BY uscc")
    path = tmp_path / "t.csv"
    excel_csv(con, "SELECT * FROM t", path)
    written = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
    assert written["uscc"].tolist() == [f"{i:09d}" for i in range(400000)]
    assert (written["note"] == "'=x").sum() == len(range(0, 400000, 7))  # still neutralised


def test_one_overlong_text_cannot_stop_every_banks_workbook(tmp_path):
    """Excel refuses a cell over 32,767 characters: one such firm name failed the night's publication."""
    frame = pd.DataFrame({"firm_name": ["重" * 40_000, "乙"], "limit_fen": [1, 2]})
    cut = _within_excel(frame)
    assert cut["firm_name"].str.len().tolist() == [EXCEL_CELL_CHARS, 1] and cut["firm_name"][0].endswith("…")
    assert cut["limit_fen"].tolist() == [1, 2] and frame["firm_name"].str.len()[0] == 40_000  # the input untouched
    # a sheet with no rows, or a text column with no values at all, passes as it is
    empty, blank = frame.head(0), pd.DataFrame({"gates": [None, None], "n": [1, 2]}, dtype=object)
    assert _within_excel(empty) is empty and _within_excel(blank) is blank
    _workbook(tmp_path / "b.xlsx", {"eligible": frame, "none": empty, "blank": blank}, datetime.date(2026, 11, 28))
    assert zipfile.ZipFile(tmp_path / "b.xlsx").testzip() is None


@pytest.fixture
def store(tmp_path):
    db = tmp_path / "real" / "vc.duckdb"
    db.parent.mkdir()
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    return db


def test_a_restore_through_a_symlink_replaces_the_store_not_the_link(tmp_path, store):
    backup(store, tmp_path / "bk")
    with duckdb.connect(str(store)) as con:
        con.execute("INSERT INTO t VALUES (2)")  # written after the backup
    link = tmp_path / "link.duckdb"
    link.symlink_to(store)
    restore(tmp_path / "bk", link)
    assert link.is_symlink() and os.path.realpath(link) == str(store)
    with duckdb.connect(str(store), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM t").fetchone()[0] == 1  # the store itself went back


def test_a_backup_into_the_registry_it_copies_is_refused(tmp_path, store):
    registry = store.parent / "models"
    (registry / "v1").mkdir(parents=True)
    with pytest.raises(BackupError, match="inside the model registry"):
        backup(store, registry / "bk", registry)
    assert sorted(p.name for p in registry.iterdir()) == ["v1"]  # nothing copied, nothing left behind

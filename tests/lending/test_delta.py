"""Change files on hand-built bank tables: a bank that applies each night's changes holds each night's
table, a date published again included; a revoked authorisation is a withdrawal whatever else happened
to the firm; a rebuild refuses a chain that does not lead back or a file that was altered.
(`tests/lending/test_access.py` checks the same on real nights.)"""

import hashlib
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from lending.delta import (
    CHANGES,
    FULL,
    RebuildError,
    Stored,
    full_table_of,
    full_table_reason,
    keep_later_nights_whole,
    kept_folder,
    kept_root,
    load_table,
    rebuild,
    tidy_kept,
    write_changes,
)

D1, D2, D3 = date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 7)


class Bank:
    """The programme's side (a store with the gate's tables) and the bank's own copy, which loads the
    first full table and then only the change files."""

    def __init__(self, root: Path):
        self.root, self.dir, self.full = root, root / "B01", root.parent / "full"
        self.con = duckdb.connect()
        self.con.execute("CREATE SCHEMA decisions")
        self.con.execute("CREATE TABLE decisions.eligibility_firms (uscc VARCHAR, as_of DATE, authorised BOOLEAN)")
        self.con.execute("CREATE TABLE decisions.eligibility_products (product_id VARCHAR, as_of DATE, bank_id VARCHAR)")
        self.copy = duckdb.connect()

    def publish(self, day: date, rows: dict[str, float], authorised: str, registered: str = "AFG",
                extra: str = "", full: str | None = "every night", stored: Stored | None = None) -> dict:
        """Publish `rows` (firm -> limit, product P1) for `day`: the gate's tables as given; the full
        table kept when `full` (as publication's cycle says), else only in `self.full` (what a full
        publication of the date would have given the bank)."""
        c = self.con
        c.execute("CREATE OR REPLACE TEMP TABLE _authorised AS SELECT unnest(?::VARCHAR[]) AS uscc", [list(authorised)])
        c.execute("DELETE FROM decisions.eligibility_firms WHERE as_of = ?", [day])
        c.execute("INSERT INTO decisions.eligibility_firms SELECT unnest(?::VARCHAR[]), ?, true", [list(registered), day])
        c.execute("DELETE FROM decisions.eligibility_products WHERE as_of = ?", [day])
        c.execute("INSERT INTO decisions.eligibility_products VALUES ('P1', ?, 'B01')", [day])
        values = ", ".join(f"('{u}', 'P1', 'name of {u}', {v}, true, ''{extra})" for u, v in rows.items()) or \
            f"(NULL, NULL, NULL, NULL::DOUBLE, NULL::BOOLEAN, NULL{extra}) LIMIT 0"
        columns = "uscc, product_id, firm_name, limit_fen, eligible, gates" + (", note" if extra else "")
        c.execute(f"CREATE OR REPLACE TABLE elig AS SELECT *, DATE '{day}' AS as_of, 'snap-{day}' AS snapshot_id "
                  f"FROM (VALUES {values}) v({columns}) ORDER BY uscc, product_id")
        tmp = self.dir / f".{day}.partial"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        c.execute(f"COPY elig TO '{tmp / FULL}' (FORMAT parquet)")
        if (self.dir / day.isoformat()).exists():  # as publication does before a date's folder is replaced
            keep_later_nights_whole(self.dir, day)
        manifest = write_changes(c, "elig", tmp, self.dir, day, "B01", "_authorised", full_reason=full, stored=stored)
        (self.full / day.isoformat()).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / FULL, self.full / day.isoformat() / FULL)
        if manifest["full_table"] is None:
            (tmp / FULL).unlink()
        shutil.rmtree(self.dir / day.isoformat(), ignore_errors=True)
        tmp.rename(self.dir / day.isoformat())
        return manifest

    def load_full(self, day: date) -> None:
        self.copy.execute(f"CREATE OR REPLACE TABLE t AS SELECT * FROM read_parquet('{self.dir / day.isoformat() / FULL}')")

    def apply(self, day: date) -> None:
        """What a bank's loader does with a change file: each row replaces its pair; a withdrawal deletes it."""
        f = self.dir / day.isoformat() / CHANGES
        self.copy.execute(f"DELETE FROM t USING read_parquet('{f}') c WHERE t.uscc = c.uscc AND t.product_id = c.product_id")
        self.copy.execute(f"INSERT INTO t SELECT * EXCLUDE (change, reason) FROM read_parquet('{f}') WHERE change <> 'withdraw'")

    def holds(self) -> dict[str, float]:
        return dict(self.copy.execute("SELECT uscc, limit_fen FROM t ORDER BY uscc").fetchall())

    def changes(self, day: date) -> list[tuple]:
        return duckdb.sql(f"SELECT change, reason, uscc, firm_name FROM read_parquet('{self.dir / day.isoformat() / CHANGES}') "
                          "ORDER BY uscc").fetchall()


@pytest.fixture
def bank(tmp_path):
    return Bank(tmp_path / "publish")


def test_a_date_published_again_withdraws_what_the_bank_may_already_hold(bank):
    bank.publish(D1, {"A": 100}, authorised="AF")
    bank.load_full(D1)
    bank.publish(D2, {"A": 100, "F": 200}, authorised="AF")
    bank.apply(D2)
    assert bank.holds() == {"A": 100, "F": 200}
    # F revokes and the night of D2 is run again: against D1 alone nothing would be said of F
    bank.publish(D2, {"A": 150}, authorised="A")
    assert bank.changes(D2) == [("update", None, "A", "name of A"), ("withdraw", "authorisation_ended", "F", None)]
    bank.apply(D2)
    assert bank.holds() == {"A": 150}
    bank.publish(D3, {"A": 150, "G": 300}, authorised="AG")
    bank.apply(D3)
    assert bank.holds() == {"A": 150, "G": 300}
    out = rebuild(bank.dir, D3, D1, bank.root.parent / "rebuilt")
    assert out.read_bytes() == (bank.dir / D3.isoformat() / FULL).read_bytes()


def test_consent_is_the_reason_given_whatever_else_happened_to_the_firm(bank):
    bank.publish(D1, {"A": 1, "F": 2, "G": 3}, authorised="AFG")
    # F revoked and was deregistered on the same night; G was deregistered, its consent standing
    bank.publish(D2, {"A": 1}, authorised="AG", registered="A")
    assert bank.changes(D2) == [("withdraw", "authorisation_ended", "F", None), ("withdraw", "left_programme", "G", None)]


def test_a_new_column_lists_every_pair_and_the_rebuild_follows_it(bank):
    bank.publish(D1, {"A": 1, "F": 2}, authorised="AF")
    manifest = bank.publish(D2, {"A": 1, "G": 3}, authorised="AG", extra=", 'new'")
    assert manifest["schema_changed"] and manifest["changes"] == {"insert": 1, "update": 1, "withdraw": 1}
    out = rebuild(bank.dir, D2, D1, bank.root.parent / "rebuilt")
    assert out.read_bytes() == (bank.dir / D2.isoformat() / FULL).read_bytes()


def test_a_rebuild_refuses_an_altered_file_a_base_published_again_and_a_bad_request(bank, tmp_path):
    bank.publish(D1, {"A": 1, "F": 2}, authorised="AF")
    bank.publish(D2, {"A": 1}, authorised="A")
    bank.publish(D3, {"A": 5}, authorised="A")
    with pytest.raises(RebuildError, match="is after the date to rebuild"):
        rebuild(bank.dir, D1, D3, tmp_path / "a")
    with pytest.raises(RebuildError, match="inside the publication folder"):
        rebuild(bank.dir, D3, D1, bank.root / "mine")
    (tmp_path / "file").write_text("x")
    with pytest.raises(RebuildError, match="exists and is not an empty folder"):
        rebuild(bank.dir, D3, D1, tmp_path / "file")
    # a change file emptied: the rows no longer add up to what was published
    d2 = bank.dir / D2.isoformat() / CHANGES
    kept = d2.read_bytes()
    duckdb.sql(f"COPY (SELECT * FROM read_parquet('{d2}') WHERE false) TO '{d2}.x' (FORMAT parquet)")
    Path(f"{d2}.x").replace(d2)
    with pytest.raises(RebuildError, match="gives 2 rows where the manifest of 2026-01-06 counts 1"):
        rebuild(bank.dir, D3, D1, tmp_path / "b")
    d2.write_bytes(kept)
    assert not (tmp_path / "b").exists()  # nothing half-written
    # D2 published again after D3 was made against it: D3 cannot be rebuilt through it
    bank.publish(D2, {"A": 2}, authorised="A")
    with pytest.raises(RebuildError, match="made against another table of 2026-01-06"):
        rebuild(bank.dir, D3, D1, tmp_path / "c")
    assert rebuild(bank.dir, D2, D1, tmp_path / "d").read_bytes() == (bank.dir / D2.isoformat() / FULL).read_bytes()


def test_between_full_tables_the_change_files_give_each_nights_table(bank, tmp_path):
    """Nights without the full table: the bank's loader, `load_table` and `rebuild` each give the table a
    full publication would have; a re-publication of such a night is against what the bank holds."""
    bank.publish(D1, {"A": 1, "F": 2}, authorised="AF")
    bank.load_full(D1)
    for day, rows, authorised in ((D2, {"A": 1, "F": 5, "G": 3}, "AFG"), (D3, {"A": 7, "G": 3}, "AG")):
        manifest = bank.publish(day, rows, authorised=authorised, full=None)
        assert manifest["full_table"] is None and not (bank.dir / day.isoformat() / FULL).exists()
        bank.apply(day)
        assert bank.holds() == rows
    assert bank.changes(D3) == [("update", None, "A", "name of A"), ("withdraw", "authorisation_ended", "F", None)]
    con = duckdb.connect()
    for day in (D2, D3):
        load_table(con, "t", bank.dir, day)
        assert con.execute("SELECT uscc, limit_fen FROM t ORDER BY uscc").fetchall() == \
            [(u, v) for u, v in sorted({D2: {"A": 1, "F": 5, "G": 3}, D3: {"A": 7, "G": 3}}[day].items())]
        out = rebuild(bank.dir, day, None, tmp_path / day.isoformat())
        assert out.read_bytes() == (bank.full / day.isoformat() / FULL).read_bytes()
    # D3 run again after G revoked: against D2 and against D3 as the bank may hold it, neither a full table
    bank.publish(D3, {"A": 7}, authorised="A", full=None)
    assert bank.changes(D3) == [("update", None, "A", "name of A"), ("withdraw", "authorisation_ended", "F", None),
                                ("withdraw", "authorisation_ended", "G", None)]
    bank.apply(D3)
    assert bank.holds() == {"A": 7}
    assert rebuild(bank.dir, D3, D1, tmp_path / "again").read_bytes() == (bank.full / D3.isoformat() / FULL).read_bytes()
    # a change of columns brings the full table
    manifest = bank.publish(date(2026, 1, 8), {"A": 7}, authorised="A", extra=", 'new'", full=None)
    assert manifest["full_table"] == "columns changed" and (bank.dir / "2026-01-08" / FULL).is_file()


def test_the_full_table_comes_weekly_and_whenever_the_last_is_a_week_old(tmp_path):
    def folder(day: date, full: bool, base: date | None = None) -> None:
        (tmp_path / day.isoformat()).mkdir()
        (tmp_path / day.isoformat() / "manifest.json").write_text(json.dumps({
            "base": base and base.isoformat(), "base_sha256": base and hashlib.sha256(b"x").hexdigest(), "rows": 0,
            "table_sha256": hashlib.sha256(b"x").hexdigest(), "stamps": {"as_of": day.isoformat(), "snapshot_id": "s"}}))
        if full:
            (tmp_path / day.isoformat() / FULL).write_text("x")

    monday, friday = frozenset({1}), frozenset({5})
    assert full_table_reason(tmp_path, D1, monday) == "first publication"  # D1 is a Monday
    folder(D1, True)
    assert full_table_reason(tmp_path, D2, monday) is None
    assert full_table_reason(tmp_path, D2, frozenset(range(1, 8))) == "weekly (Tue)"
    folder(D2, False, D1)
    assert full_table_reason(tmp_path, D2, monday) is None  # a re-run of a night without it
    assert full_table_reason(tmp_path, D2, monday, backfill=True) == "backfill"
    assert full_table_reason(tmp_path, date(2026, 1, 9), friday) == "weekly (Fri)"
    assert full_table_reason(tmp_path, date(2026, 1, 12), friday) == "7 days since the full table of 2026-01-05"
    folder(D3, True, D2)  # say a Wednesday's night had it: run again, it keeps it (later changes may start from it)
    assert full_table_reason(tmp_path, D3, friday) == "published again over a full table"
    (tmp_path / D1.isoformat() / FULL).unlink()  # the way back reaches no full table: one comes
    assert full_table_reason(tmp_path, D3 + timedelta(days=1), friday) is None  # D3's own
    shutil.rmtree(tmp_path / D3.isoformat())
    assert full_table_reason(tmp_path, D3, friday) == "no full table before"
    (tmp_path / D1.isoformat() / FULL).write_text("y")  # there, but not the table published that night
    assert full_table_reason(tmp_path, D3, friday) == "no full table before"


D4, D5 = date(2026, 1, 8), date(2026, 1, 9)


def test_a_night_run_again_between_full_tables_loses_neither_a_pair_nor_the_later_nights(bank, tmp_path):
    """A night of change files alone run again: a pair it had lost and now has again as in the base is
    listed (a bank holding the first run lacks it); the later nights made against the first run keep a
    way back (the next one's full table is rebuilt before the folder is replaced, and kept by the
    programme outside the bank's folder)."""
    bank.publish(D1, {"A": 1, "B": 2}, authorised="AB")
    bank.load_full(D1)
    bank.publish(D2, {"A": 1}, authorised="A", full=None)  # B's authorisation could not be verified
    bank.apply(D2)
    bank.publish(D3, {"A": 3}, authorised="A", full=None)
    bank.publish(D4, {"A": 4}, authorised="A", full=None)
    bank.publish(D2, {"A": 1, "B": 2}, authorised="AB", full=None)  # verified on the re-run: B as in the base
    assert bank.changes(D2) == [("update", None, "B", "name of B")]
    bank.apply(D2)
    assert bank.holds() == {"A": 1, "B": 2}
    assert not (bank.dir / D3.isoformat() / FULL).exists() and not (bank.dir / D4.isoformat() / FULL).exists()
    kept = kept_folder(bank.dir, D3)
    assert not kept.is_relative_to(bank.root) and (kept / FULL).read_bytes() == (bank.full / D3.isoformat() / FULL).read_bytes()
    d3 = json.loads((kept / "manifest.json").read_text())
    assert d3["full_table"] == "kept by the programme: the night of 2026-01-06, its base, published again"
    assert d3["full_table_sha256"] == d3["table_sha256"]  # the same DuckDB wrote it again: the same bytes
    assert not [p for p in [*bank.dir.iterdir(), *kept.parent.iterdir()] if p.name.startswith(".")]  # nothing left aside
    for day in (D2, D3, D4):
        assert rebuild(bank.dir, day, None, tmp_path / day.isoformat()).read_bytes() == \
            (bank.full / day.isoformat() / FULL).read_bytes()
    with pytest.raises(RebuildError, match="made against another table of 2026-01-06"):
        rebuild(bank.dir, D4, D1, tmp_path / "through")  # the way through the replaced night is gone, and said so


def test_a_night_run_again_writes_nothing_into_a_later_nights_folder_after_a_withdrawal(bank, tmp_path):
    """B withdraws after the night of D2. D1 is then published again: D2's table (which holds B, as
    published that night) must not be written anew into the bank's folder of D2, where the bank would
    receive it after the withdrawal; the programme keeps it for itself, and the bank's next night
    brings its full table, its own full tables no longer leading there."""
    bank.publish(D1, {"A": 1, "B": 2}, authorised="AB")
    bank.publish(D2, {"A": 1, "B": 3}, authorised="AB", full=None)
    bank.publish(D3, {"A": 1}, authorised="A", full=None)  # B withdrew: withdrawn the same night
    def holds_b(path: Path) -> bool:  # B's data: a withdrawal (B's key, telling the bank to delete it) is not
        rows = duckdb.sql(f"SELECT * FROM {'read_parquet' if path.suffix == '.parquet' else 'read_csv'}('{path}')")
        withdrawal = "change = 'withdraw'" if "change" in rows.columns else "false"
        return rows.filter(f"uscc = 'B' AND NOT ({withdrawal})").fetchall() != []

    sent = {p: p.read_bytes() for p in bank.dir.rglob("*") if p.is_file()}
    bank.publish(D1, {"A": 1}, authorised="A", full="backfill")  # as publication gives a past date now
    tables = [p for p in bank.dir.rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv")]
    assert [p for p in tables if holds_b(p)]  # D2's files, as the bank received them that night
    assert [p.relative_to(bank.dir) for p in tables if holds_b(p) and sent.get(p) != p.read_bytes()] == []  # none new, none rewritten
    assert not (bank.dir / D2.isoformat() / FULL).exists() and (kept_folder(bank.dir, D2) / FULL).is_file()
    # the programme can still rebuild D2 and D3 from its own copy, byte for byte
    for day in (D2, D3):
        assert rebuild(bank.dir, day, None, tmp_path / day.isoformat()).read_bytes() == \
            (bank.full / day.isoformat() / FULL).read_bytes()
    assert full_table_reason(bank.dir, D4, frozenset({5})) == "no full table before"


def test_the_stored_table_stands_in_for_a_folder_only_when_it_is_the_table_published(bank):
    """A store that committed a re-run of a night whose folder never reached its place (a crash between
    the two) holds another table than the bank: the changes are against the folder's."""
    bank.publish(D1, {"A": 1, "X": 2}, authorised="AX")
    bank.publish(D2, {"A": 1, "X": 2}, authorised="AX", full=None)
    published = json.loads((bank.dir / D2.isoformat() / "manifest.json").read_text())["table_sha256"]
    bank.con.execute(f"CREATE TABLE crashed AS SELECT * REPLACE ('Y' AS uscc) FROM read_parquet('{bank.full / D2.isoformat() / FULL}')")
    bank.publish(D3, {"A": 1, "Y": 2}, authorised="AY", full=None, stored=Stored("crashed", D2, "another run's"))
    assert sorted(bank.changes(D3)) == sorted([("withdraw", "authorisation_ended", "X", None), ("insert", None, "Y", "name of Y")])
    # the same copy, recorded with the SHA-256 the folder was published with, is read in its place
    bank.con.execute(f"CREATE OR REPLACE TABLE genuine AS SELECT * FROM read_parquet('{bank.full / D2.isoformat() / FULL}')")
    bank.publish(D3, {"A": 1, "Y": 2}, authorised="AY", full=None, stored=Stored("genuine", D2, published))
    assert sorted(bank.changes(D3)) == sorted([("withdraw", "authorisation_ended", "X", None), ("insert", None, "Y", "name of Y")])


def test_a_change_file_altered_in_its_values_is_refused_where_its_rows_still_add_up(bank):
    bank.publish(D1, {"A": 1}, authorised="A")
    bank.publish(D2, {"A": 2}, authorised="A", full=None)
    changes = bank.dir / D2.isoformat() / CHANGES
    duckdb.sql(f"COPY (SELECT * REPLACE (99.0 AS limit_fen) FROM read_parquet('{changes}')) TO '{changes}.x' (FORMAT parquet)")
    Path(f"{changes}.x").replace(changes)
    with pytest.raises(RebuildError, match="not the table published"):
        load_table(duckdb.connect(), "t", bank.dir, D2)


def test_the_week_is_counted_from_the_full_table_the_changes_start_from(bank):
    """A date backfilled between the last full table and the previous night has a newer full table,
    but the nights after it do not start from it."""
    bank.publish(D1, {"A": 1}, authorised="A")  # Monday, the full table
    bank.publish(D3, {"A": 1}, authorised="A", full=None)
    bank.publish(D4, {"A": 1}, authorised="A", full=None)
    bank.publish(D2, {"A": 1}, authorised="A")  # backfilled afterwards, whole
    next_monday = D1 + timedelta(days=7)  # not a full-table day of this bank (Fridays)
    assert full_table_reason(bank.dir, next_monday, frozenset({5})) == "7 days since the full table of 2026-01-05"


def test_a_night_run_again_over_its_full_table_keeps_the_reason_it_had(tmp_path):
    folder = tmp_path / D2.isoformat()
    folder.mkdir(parents=True)
    (tmp_path / D1.isoformat()).mkdir()
    (tmp_path / D1.isoformat() / FULL).write_text("x")
    (folder / FULL).write_text("x")
    (folder / "manifest.json").write_text(json.dumps({  # the reason its first run gave
        "base": D1.isoformat(), "base_sha256": None, "rows": 0, "table_sha256": hashlib.sha256(b"x").hexdigest(),
        "stamps": {"as_of": D2.isoformat(), "snapshot_id": "s"}, "full_table": "columns changed"}))
    assert full_table_reason(tmp_path, D2, frozenset({5})) == "columns changed"



def test_a_full_table_altered_after_publication_is_refused_as_a_start(bank, tmp_path):
    bank.publish(D1, {"A": 1}, authorised="A")
    bank.publish(D2, {"A": 2}, authorised="A", full=None)
    full = bank.dir / D1.isoformat() / FULL
    duckdb.sql(f"COPY (SELECT * REPLACE (7.0 AS limit_fen) FROM read_parquet('{full}')) TO '{full}.x' (FORMAT parquet)")
    Path(f"{full}.x").replace(full)
    for read in (lambda: load_table(duckdb.connect(), "t", bank.dir, D1), lambda: load_table(duckdb.connect(), "t", bank.dir, D2),
                 lambda: rebuild(bank.dir, D2, None, tmp_path / "x")):
        with pytest.raises(RebuildError, match="not the table published that night"):
            read()


def test_a_night_published_by_another_duckdb_is_read_by_its_rows_and_not_rebuilt_as_bytes(bank, tmp_path):
    bank.publish(D1, {"A": 1}, authorised="A")
    bank.publish(D2, {"A": 2}, authorised="A", full=None)
    manifest = bank.dir / D2.isoformat() / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"duckdb": "{duckdb.__version__}"', '"duckdb": "0.9.2"'))
    con = duckdb.connect()
    load_table(con, "t", bank.dir, D2)  # the rows, each step counted
    assert con.execute("SELECT uscc, limit_fen FROM t").fetchall() == [("A", 2.0)]
    with pytest.raises(RebuildError, match="published with DuckDB 0.9.2"):
        rebuild(bank.dir, D2, None, tmp_path / "x")


def test_a_kept_copy_goes_once_its_night_no_longer_names_it(bank):
    """A copy may hold a firm that has withdrawn since: it is kept no longer than its night's folder
    holds the manifest it was kept with, and a hand-edited copy that does not match is not read."""
    bank.publish(D1, {"A": 1}, authorised="A")
    bank.publish(D2, {"A": 2}, authorised="A", full=None)
    bank.publish(D3, {"A": 3}, authorised="A", full=None)
    bank.publish(D1, {"A": 7}, authorised="A", full="backfill")
    kept = kept_folder(bank.dir, D2)
    assert full_table_of(bank.dir, D2) == kept / FULL
    record = json.loads((kept / "manifest.json").read_text())
    (kept / "manifest.json").write_text(json.dumps(record | {"rows": 5}))  # no longer the night's manifest
    assert full_table_of(bank.dir, D2) is None
    (kept / "manifest.json").write_text(json.dumps(record))
    tidy_kept(bank.dir)
    assert (kept / FULL).is_file()  # still the night's: stays
    bank.publish(D2, {"A": 5}, authorised="A", full="backfill")  # the night published again, another table
    tidy_kept(bank.dir)
    assert not kept.exists() and [p.name for p in kept.parent.iterdir()] == [D3.isoformat()]  # D3's: on D2's first run
    shutil.rmtree(bank.dir / D3.isoformat())  # a night's folder gone: its copy goes too
    tidy_kept(bank.dir)
    assert not kept.parent.exists()


@pytest.mark.parametrize("interrupted", [False, True])
def test_a_table_kept_in_a_banks_folder_by_an_earlier_version_moves_out(bank, tmp_path, interrupted):
    """Before the copies moved out, a kept table was written into the night's own folder (with
    `full_table` "the night of D, its base, published again"): it goes to the kept copies and the
    night's manifest is again the one the bank received; the night still rebuilds. A move that
    crashed after the table left the folder is finished by the next one."""
    bank.publish(D1, {"A": 1, "B": 2}, authorised="AB")
    received = bank.publish(D2, {"A": 1, "B": 3}, authorised="AB", full=None)
    folder = bank.dir / D2.isoformat()
    sent = (folder / "manifest.json").read_bytes()
    shutil.copy(bank.full / D2.isoformat() / FULL, folder / FULL)  # as the earlier version wrote it
    (folder / "eligibility.csv").write_text("uscc\nA\nB\n")
    (folder / "manifest.json").write_text(json.dumps(received | {
        "full_table": f"the night of {D1}, its base, published again", "full_table_sha256": received["table_sha256"]},
        indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    if interrupted:  # the copy in place and the table gone from the folder; its csv and manifest not yet
        copy = kept_folder(bank.dir, D2)
        copy.mkdir(parents=True)
        shutil.copy(folder / FULL, copy / FULL)
        shutil.copy(folder / "manifest.json", copy / "manifest.json")
        (folder / FULL).unlink()
    tidy_kept(bank.dir)
    assert sorted(p.name for p in folder.iterdir()) == ["changes.csv", "changes.parquet", "manifest.json"]
    assert (folder / "manifest.json").read_bytes() == sent
    assert full_table_of(bank.dir, D2) == kept_folder(bank.dir, D2) / FULL
    assert rebuild(bank.dir, D2, None, tmp_path / "r").read_bytes() == (bank.full / D2.isoformat() / FULL).read_bytes()


def test_a_full_table_the_bank_received_stays_whatever_reason_it_inherited(bank):
    """A night run again over a folder the earlier version had kept a table in inherited that folder's
    reason ("..., its base, published again") with a full table of its own, which the bank received:
    only the key that version's keep alone wrote (`full_table_sha256`) marks a table to move out."""
    bank.publish(D1, {"A": 1}, authorised="A")
    folder = bank.dir / D1.isoformat()
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(manifest | {
        "full_table": f"the night of {D1}, its base, published again"}, indent=1) + "\n")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    tidy_kept(bank.dir)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert full_table_of(bank.dir, D1) == folder / FULL


def test_the_kept_copies_sit_beside_the_publication_folder_however_it_is_named(tmp_path, monkeypatch):
    publish = tmp_path / "publish"
    (publish / "sub").mkdir(parents=True)
    monkeypatch.chdir(publish)
    assert kept_root(Path(".")) == kept_root(Path("sub/..")) == kept_root(publish) == tmp_path / ".publish.kept"


def test_the_incremental_benchmark_compares_the_banks_files_byte_for_byte(tmp_path):
    """`benchmarks.incremental` calls two publications identical only when every file of each bank's
    folder, LATEST naming the night, and the table rebuilt from one side's change files are the other
    side's: a changed limit, a bank missing, a LATEST behind, an extra file, a change file that no
    longer rebuilds and no banks at all are each reported, none raised."""
    from benchmarks.incremental import publication_differences

    one, other = Bank(tmp_path / "one" / "publish"), Bank(tmp_path / "other" / "publish")
    for side in (one, other):
        side.publish(D1, {"A": 100, "B": 100}, authorised="AB")
        side.publish(D2, {"A": 200, "B": 100}, authorised="AB", full=None)
        (side.dir / "LATEST").write_text(f"{D2}\n", encoding="utf-8")
    assert publication_differences(one.root, other.root, D2, {"B01"}) == {"B01": []}
    assert publication_differences(one.root, other.root, D2, {"B01", "B02"}) == {"B01": [], "B02": ["folder"]}
    (other.dir / "LATEST").write_text(f"{D1}\n", encoding="utf-8")
    assert publication_differences(one.root, other.root, D2, {"B01"}) == {
        "B01": ["LATEST", f"LATEST of {other.dir} does not name {D2}"]}
    (other.dir / "LATEST").write_text(f"{D2}\n", encoding="utf-8")
    (other.dir / D1.isoformat() / "stray.csv").write_text("x", encoding="utf-8")  # an earlier night's folder counts too
    assert publication_differences(one.root, other.root, D2, {"B01"}) == {"B01": [f"{D1}/stray.csv"]}
    (other.dir / D1.isoformat() / "stray.csv").unlink()
    other.publish(D2, {"A": 300, "B": 100}, authorised="AB", full=None)  # the same night, another limit
    assert publication_differences(one.root, other.root, D2, {"B01"}) == {
        "B01": [f"{D2}/changes.csv", f"{D2}/changes.parquet", f"{D2}/manifest.json", "rebuilt full table"]}
    (one.dir / D2.isoformat() / CHANGES).write_bytes(b"not parquet")
    (reported,) = publication_differences(one.root, other.root, D2, {"B01"})["B01"][-1:]
    assert reported.startswith("rebuild: RebuildError")
    empty_one, empty_other = tmp_path / "none1", tmp_path / "none2"
    empty_one.mkdir(), empty_other.mkdir()
    assert publication_differences(empty_one, empty_other, D2, {"B01"}) == {"B01": ["folder"]}
    with pytest.raises(SystemExit, match="same folder"):
        publication_differences(one.root, one.root, D2, {"B01"})

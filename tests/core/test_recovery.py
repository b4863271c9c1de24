"""Backup and restore: restore yesterday's backup, replay today's run, reach the same state; a
damaged backup is refused and the store left as it was; no backup while a run writes."""

import hashlib
import shutil
from datetime import date

import duckdb
import pytest

from data_contracts.personal import reads
from pipelines.run import run_nightly
from valuecredit.backup import READS_LOG, BackupError, backup, restore
from valuecredit.store import StoreBusy, writer_lock

DAY1, DAY2 = date(2026, 11, 27), date(2026, 11, 28)  # DAY1: the first_clean_night fixture's
STATE = ["SELECT * FROM ledger.postings ORDER BY seq", "SELECT * FROM ledger.runs ORDER BY ALL",
         "SELECT * FROM scores.commercial_value ORDER BY ALL", "SELECT * FROM decisions.eligibility_pairs ORDER BY ALL",
         "SELECT * FROM bank_b03.eligibility ORDER BY ALL", "SELECT * FROM decisions.application_deadlines ORDER BY ALL"]


def state(db) -> list:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [con.execute(q).df() for q in STATE]
    finally:
        con.close()


def files(folder) -> dict:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_restore_yesterdays_backup_and_replay_today_reaches_the_same_state(after_first_clean_night, clean_landing,
                                                                           tmp_path):
    db = after_first_clean_night / "night.duckdb"
    saved = backup(db, tmp_path / "backup-day1", db.parent / "models")
    assert saved.rows > 0 and (tmp_path / "backup-day1" / "manifest.json").exists()
    assert (tmp_path / "backup-day1" / READS_LOG).read_text() == (tmp_path / "store" / "night.duckdb.personal_data_reads.jsonl").read_text()
    run_nightly(DAY2, clean_landing, db)
    today, published = state(db), files(db.parent / "publish" / "B03" / DAY2.isoformat())
    restore(tmp_path / "backup-day1", db, db.parent / "models")
    # the log of personal-data reads is append-only: the restore does not roll back today's entries
    assert reads(db)[-1]["business_date"] == DAY2.isoformat()
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT max(business_date) FROM ledger.runs").fetchone()[0] == DAY1  # yesterday's state
    con.close()
    run_nightly(DAY2, clean_landing, db)
    for before, after in zip(today, state(db)):
        assert before.equals(after)
    assert files(db.parent / "publish" / "B03" / DAY2.isoformat()) == published  # byte for byte


def test_a_damaged_backup_is_refused_and_the_store_left_as_it_was(after_first_clean_night, tmp_path):
    db = after_first_clean_night / "night.duckdb"
    backup(db, tmp_path / "b", None)
    with open(tmp_path / "b" / "store.duckdb", "r+b") as f:  # one flipped byte in the middle of the copy
        f.seek(f.seek(0, 2) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(BackupError, match="SHA-256 differs"):
        restore(tmp_path / "b", db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    with pytest.raises(BackupError, match="not a readable backup manifest"):
        restore(tmp_path / "nothing-here", db)
    with pytest.raises(BackupError, match="already exists"):
        backup(db, tmp_path / "b")


def test_no_backup_while_a_run_holds_the_store(after_first_clean_night, tmp_path):
    db = after_first_clean_night / "night.duckdb"
    with writer_lock(db), pytest.raises(StoreBusy, match="being written by another run"):
        backup(db, tmp_path / "b")
    assert not (tmp_path / "b").exists() and not (tmp_path / "b.partial").exists()
    shutil.rmtree(tmp_path / "b", ignore_errors=True)

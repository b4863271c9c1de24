"""Backup and restore of the store (everything the nightly run writes: staging, scores, decisions,
the pool ledger, the banks' schemas) and of the model registry beside it.

A backup is taken under the store's writer lock after a checkpoint, so no run writes while the file
is copied; it is written aside and renamed, with a manifest of the file's SHA-256, the row count of
every table and the ledger's debit and credit totals, and checked by opening the copy. A restore
verifies the manifest first, takes the writer lock, and swaps the file and the registry in by rename:
a corrupt or partial backup is refused and the store left as it was.

The log of personal-data reads beside the store is copied too, but a restore never rolls it back:
reads that happened after the backup stay recorded. It is put back only if it was lost."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from data_contracts.personal import READS_LOG_SUFFIX
from valuecredit.sqltext import q
from valuecredit.store import busy, writer_lock

MANIFEST = "manifest.json"
STORE_FILE = "store.duckdb"
REGISTRY = "models"
READS_LOG = "personal_data_reads.jsonl"


class BackupError(ValueError):
    """A backup that cannot be taken or restored: says which file and why."""


@dataclass
class BackupSummary:
    folder: str
    sha256: str
    tables: int
    rows: int


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read a mebibyte at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _inventory(path: Path) -> dict:
    """Row counts of every table and the ledger's totals, read from the file itself."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() ORDER BY ALL").fetchall()
        rows = {f"{s}.{t}": con.execute(f"SELECT count(*) FROM {q(s)}.{q(t)}").fetchone()[0] for s, t in tables}
        ledger = (con.execute("SELECT sum(debit_fen), sum(credit_fen) FROM ledger.postings").fetchone()
                  if "ledger.postings" in rows else (None, None))
    finally:
        con.close()
    return {"rows": rows, "ledger_debit_fen": ledger[0], "ledger_credit_fen": ledger[1]}


def backup(db: Path, to: Path, registry: Path | None = None) -> BackupSummary:
    """Copy the store (and the registry, if there is one) into the new folder `to`."""
    db, to = Path(db), Path(to)
    if not db.exists():
        raise BackupError(f"{db} does not exist: nothing to back up")
    if to.exists():
        raise BackupError(f"{to} already exists: a backup goes into a new folder")
    if registry is not None and Path(os.path.realpath(to)).is_relative_to(os.path.realpath(registry)):
        raise BackupError(f"{to} is inside the model registry {registry}, which the backup copies: choose a folder "
                          "outside it")
    partial = to.with_name(to.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    with writer_lock(db):
        try:
            con = duckdb.connect(str(db))
        except duckdb.IOException as exc:  # a reader has it open
            raise busy(db, exc, read_only=False) from None
        con.execute("CHECKPOINT")  # the write-ahead log into the file, so the file alone is the store
        con.close()
        partial.mkdir(parents=True)
        shutil.copy2(db, partial / STORE_FILE)
        if registry is not None and Path(registry).exists():
            shutil.copytree(registry, partial / REGISTRY)
        if (log := Path(str(db) + READS_LOG_SUFFIX)).exists():
            shutil.copy2(log, partial / READS_LOG)
    manifest = {"source": str(db), "sha256": file_sha256(partial / STORE_FILE), **_inventory(partial / STORE_FILE)}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, to)
    return BackupSummary(str(to), manifest["sha256"], len(manifest["rows"]), sum(manifest["rows"].values()))


def restore(source: Path, db: Path, registry: Path | None = None) -> BackupSummary:
    """Put a verified backup in place of the store (and the registry)."""
    source, db = Path(source), Path(os.path.realpath(db))  # through a symlink, the store itself is replaced
    try:
        manifest = json.loads((source / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{source / MANIFEST}: not a readable backup manifest ({exc})") from None
    copy = source / STORE_FILE
    if not copy.exists() or file_sha256(copy) != manifest["sha256"]:
        raise BackupError(f"{copy}: missing, or its SHA-256 differs from the manifest's: the backup is damaged; "
                          "the store was left as it was")
    with writer_lock(db):
        tmp = db.with_name(db.name + ".restoring")
        shutil.copy2(copy, tmp)
        if _inventory(tmp)["rows"] != manifest["rows"]:
            tmp.unlink()
            raise BackupError(f"{copy}: its tables differ from the manifest's; the store was left as it was")
        wal = Path(str(db) + ".wal")
        if wal.exists():
            wal.unlink()  # a log of writes after the backup must not be replayed onto it
        os.replace(tmp, db)
        if (source / READS_LOG).exists() and not (log := Path(str(db) + READS_LOG_SUFFIX)).exists():
            shutil.copy2(source / READS_LOG, log)
        if registry is not None and (source / REGISTRY).exists():
            registry = Path(registry)
            staged = registry.with_name(registry.name + ".restoring")
            shutil.rmtree(staged, ignore_errors=True)
            shutil.copytree(source / REGISTRY, staged)
            old = registry.with_name(registry.name + ".before-restore")
            shutil.rmtree(old, ignore_errors=True)
            if registry.exists():
                os.replace(registry, old)
            os.replace(staged, registry)
            shutil.rmtree(old, ignore_errors=True)
    return BackupSummary(str(source), manifest["sha256"], len(manifest["rows"]), sum(manifest["rows"].values()))

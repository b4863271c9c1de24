"""Change files: what changed in a bank's publication since the one before, and the full table of any
date rebuilt from an earlier one and the changes since.

Every night each bank's folder gets, beside its full table, `changes.parquet` and `changes.csv`: one
row per (firm, product) pair inserted, updated or withdrawn since the bank's previous publication
(its newest earlier date folder, named `base` in the folder's `manifest.json`), with the reason of a
withdrawal, or of an eligibility lost:

- `authorisation_ended` (withdraw): the firm's authorisation ended, was revoked or cannot be verified
  tonight, a legal event the bank learns the same night. The row holds the pair's key, nothing else;
- `left_programme` (withdraw): the firm is no longer decided on (deregistered, revoked, moved away);
- `product_ended` (withdraw): the product left the bank's catalogue;
- `vetoed` (update): the pair is still listed but a gate now closes it (a negative-list hit, ...);
- `no_longer_eligible` (update): the firm now misses a condition of the product.

A row of the file replaces the pair (an upsert; a withdrawal deletes it). A date published again
(a re-run) may already have reached the bank, so its changes also cover the folder they replace:
every pair that folder held and tonight's does not is withdrawn, every pair that differs from it is
listed, and the file gives tonight's table from either the base or the replaced version. A past date
published after newer ones is marked `backfill`: it is for rebuilding that date, not for a bank that
holds a newer one.

The night's stamps (`as_of`, `snapshot_id`) are on every row and change every night: they are not
changes, the manifest holds them. When the table's columns or their types change, every pair is
listed (`schema_changed`). `rebuild` applies the chain of change files to an earlier full table,
checks each step against the manifests (row counts, the base each change file was made against) and
the result against the published table's SHA-256, and writes it as publication does: the date's
full table, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path

import duckdb

from valuecredit.backup import file_sha256
from valuecredit.spreadsheet import excel_csv
from valuecredit.sqltext import SQL, lit, q, type_name

KEY = ("uscc", "product_id")
STAMPS = ("as_of", "snapshot_id")  # one value per night on every row: in the manifest, not in the changes
CHANGES, MANIFEST, FULL = "changes.parquet", "manifest.json", "eligibility.parquet"
REASONS = {
    "authorisation_ended": "授权终止、撤回或暂不可核实 / the firm's authorisation ended, was revoked or cannot be verified",
    "left_programme": "企业不再参评(注销、吊销或迁出) / the firm is no longer decided on",
    "product_ended": "产品已下线 / the product left the bank's catalogue",
    "vetoed": "被准入门槛否决(如负面清单) / a gate now closes the pair",
    "no_longer_eligible": "不再满足产品条件 / the firm now misses a condition",
}


class RebuildError(RuntimeError):
    """Change files cannot be written or a date's table cannot be rebuilt from the folders as they are;
    the message says which file and why."""


def _day(name: str) -> date | None:
    """The date a folder is named after, written as publication writes it (YYYY-MM-DD), else None."""
    try:
        day = date.fromisoformat(name)
    except ValueError:
        return None
    return day if day.isoformat() == name else None


def previous_publication(bank_dir: Path, as_of: date) -> date | None:
    """The bank's newest date folder before `as_of` holding a full table (what tonight's changes are against)."""
    days = [day for path in (Path(bank_dir).iterdir() if Path(bank_dir).is_dir() else ())
            if (day := _day(path.name)) is not None and day < as_of and (path / FULL).is_file()]
    return max(days, default=None)


def _columns(con: duckdb.DuckDBPyConnection, relation: SQL) -> list[tuple[str, str]]:
    return [(name, kind) for name, kind, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def _match_sql(a: SQL, b: SQL) -> SQL:
    """The two relations' rows of one pair."""
    return " AND ".join(f"{a}.{q(k)} = {b}.{q(k)}" for k in KEY)


def _differs_sql(columns: list[str], other: SQL) -> SQL:
    """Tonight's row (`n`) differs from `other`'s in one of `columns` (NULL against NULL is no change)."""
    return " OR ".join(f"n.{q(c)} IS DISTINCT FROM {other}.{q(c)}" for c in columns) or "false"


def changes_sql(table: SQL, columns: list[tuple[str, str]], priors_sql: list[SQL], schema_changed: bool,
                as_of: date, bank_id: str, authorised: SQL) -> SQL:
    """The change rows of `table` (the bank's full table for `as_of`, of `columns`) against every
    relation of `priors_sql` (the base, and the folder a re-publication replaces), ordered by key;
    every pair listed when `schema_changed`. `authorised`: the firms the bank may receive anything
    about tonight (`lending.gate`)."""
    compared = [c for c, _ in columns if c not in STAMPS and c not in KEY]
    keys_sql = " UNION ".join(f"SELECT {', '.join(KEY)} FROM {prior_sql}" for prior_sql in priors_sql) or \
        f"SELECT {', '.join(KEY)} FROM {table} WHERE false"
    base_sql = priors_sql[0] if priors_sql else f"(SELECT * FROM {table} WHERE false)"
    if not priors_sql:  # the bank's first publication: every pair is an insert
        changed_sql = "false"
    elif schema_changed:
        changed_sql = "true"
    elif len(priors_sql) == 1:
        changed_sql = _differs_sql(compared, "o")
    else:  # a re-publication: against the base and against the version the bank may already hold
        changed_sql = " OR ".join(f"EXISTS (SELECT 1 FROM {prior_sql} r WHERE {_match_sql('n', 'r')} AND "
                                  f"({_differs_sql(compared, 'r')}))" for prior_sql in priors_sql)
    key_only = ", ".join(f"k.{q(c)}" if c in KEY else f"CAST(NULL AS {type_name(kind)}) AS {q(c)}" for c, kind in columns)
    d = f"DATE {lit(as_of.isoformat())}"
    return f"""
    SELECT * FROM (
        SELECT 'insert' AS change, NULL::VARCHAR AS reason, n.* FROM {table} n ANTI JOIN {base_sql} o ON {_match_sql('n', 'o')}
        UNION ALL
        SELECT 'update',
               CASE WHEN o.eligible AND NOT n.eligible
                    THEN CASE WHEN coalesce(n.gates, '') <> '' THEN 'vetoed' ELSE 'no_longer_eligible' END END,
               n.* FROM {table} n JOIN {base_sql} o ON {_match_sql('n', 'o')} WHERE {changed_sql}
        UNION ALL
        SELECT 'withdraw',
               CASE WHEN k.uscc NOT IN (SELECT uscc FROM {authorised})
                      OR k.uscc IN (SELECT uscc FROM decisions.eligibility_firms WHERE as_of = {d} AND NOT authorised)
                    THEN 'authorisation_ended'  -- first: consent is the reason that binds the bank
                    WHEN k.uscc NOT IN (SELECT uscc FROM decisions.eligibility_firms WHERE as_of = {d}) THEN 'left_programme'
                    WHEN k.product_id NOT IN (SELECT product_id FROM decisions.eligibility_products
                                              WHERE as_of = {d} AND bank_id = {lit(bank_id)}) THEN 'product_ended'
                    ELSE 'left_programme' END,
               {key_only} FROM ({keys_sql}) k ANTI JOIN {table} n ON {_match_sql('k', 'n')})
    ORDER BY {", ".join(KEY)}"""


def write_changes(con: duckdb.DuckDBPyConnection, table: SQL, folder: Path, bank_dir: Path, as_of: date,
                  bank_id: str, authorised: SQL, backfill: bool = False) -> dict:
    """The date's change files and manifest into `folder` (the bank's date folder being written, whose
    full table is already in it). `backfill`: a past date published after newer ones."""
    total, distinct = con.execute(f"SELECT count(*), count(DISTINCT ({', '.join(KEY)})) FILTER "
                                  f"({' AND '.join(f'{k} IS NOT NULL' for k in KEY)}) FROM {table}").fetchone()
    if distinct != total:  # a pair twice, or without its key, could not be changed or withdrawn
        raise RebuildError(f"bank {bank_id} on {as_of}: {total - distinct} rows repeat a (uscc, product_id) pair or "
                           "lack one; each pair must be published once")
    stamps = {}
    for stamp in STAMPS:
        values = [v for (v,) in con.execute(f"SELECT DISTINCT {q(stamp)} FROM {table}").fetchall()]
        if len(values) > 1:  # a stamp that differs between rows is a change, and could not be rebuilt
            raise RebuildError(f"bank {bank_id} on {as_of}: column {stamp} holds {len(values)} values; a night's "
                               "publication must hold one")
        stamps[stamp] = values[0] if values else None
    base_day = previous_publication(bank_dir, as_of)
    base_file = bank_dir / base_day.isoformat() / FULL if base_day else None
    replaced = bank_dir / as_of.isoformat() / FULL  # this date published before: it may have reached the bank
    files = [p for p in (base_file, replaced) if p is not None and p.is_file()]
    priors_sql = [f"read_parquet({lit(str(p))})" for p in files]
    if base_file is None and files:  # a first publication published again: its base is nothing
        priors_sql = [f"(SELECT * FROM {table} WHERE false)", *priors_sql]
    columns = _columns(con, table)
    schema_changed = any(_columns(con, prior_sql) != columns for prior_sql in priors_sql)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _changes AS "
                f"{changes_sql(table, columns, priors_sql, schema_changed, as_of, bank_id, authorised)}")
    try:
        con.execute(f"COPY _changes TO {lit(str(folder / CHANGES))} (FORMAT parquet)")
        excel_csv(con, "SELECT * FROM _changes", folder / "changes.csv")
        counts = dict(con.execute("SELECT change, count(*) FROM _changes GROUP BY change").fetchall())
        reasons = dict(con.execute("SELECT reason, count(*) FROM _changes WHERE reason IS NOT NULL GROUP BY reason "
                                   "ORDER BY reason").fetchall())
    finally:
        con.execute("DROP TABLE _changes")
    manifest = {"bank_id": bank_id, "as_of": as_of.isoformat(), "base": base_day.isoformat() if base_day else None,
                "base_sha256": _table_sha256(base_file.parent) if base_file else None, "backfill": backfill,
                "schema_changed": schema_changed,
                "stamps": stamps, "rows": total, "table_sha256": file_sha256(folder / FULL),
                "changes": {k: counts.get(k, 0) for k in ("insert", "update", "withdraw")}, "reasons": reasons,
                "duckdb": duckdb.__version__}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False, default=str) + "\n",
                                   encoding="utf-8")
    return manifest


def _table_sha256(folder: Path) -> str:
    """The SHA-256 of a published folder's full table: as its manifest recorded it when it was written
    (no second read of the file), or from the file where the folder has no manifest."""
    try:
        return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["table_sha256"]
    except (FileNotFoundError, KeyError, TypeError, ValueError):
        return file_sha256(folder / FULL)


def _manifest(folder: Path) -> dict:
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RebuildError(f"{folder}: no {MANIFEST}: not published, or published before change files were kept") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RebuildError(f"{path}: not a manifest ({exc})") from None
    needed = {"base", "stamps", "rows", "table_sha256", "base_sha256"}
    if not isinstance(manifest, dict) or not needed <= set(manifest) or not isinstance(manifest["stamps"], dict) \
            or set(manifest["stamps"]) != set(STAMPS):
        raise RebuildError(f"{path}: not a manifest (it needs {', '.join(sorted(needed))} and the stamps "
                           f"{', '.join(STAMPS)})")
    if manifest["base"] is not None and _day(str(manifest["base"])) is None:
        raise RebuildError(f"{path}: base {manifest['base']!r} is not a date YYYY-MM-DD")
    return manifest


def _apply_chain(bank_dir: Path, first: Path, chain: list[tuple[date, dict]], folder: Path) -> None:
    """The full table `first`, then each night's changes of `chain` (newest first), into `folder` as
    publication writes a table; each step's rows counted against its manifest."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"CREATE TABLE t AS SELECT * FROM read_parquet({lit(str(first))})")
        for day, manifest in reversed(chain):
            changes = bank_dir / day.isoformat() / CHANGES
            if not changes.is_file():
                raise RebuildError(f"{changes}: missing")
            c = f"read_parquet({lit(str(changes))})"
            columns = ", ".join(q(name) for name, _ in _columns(con, c) if name not in ("change", "reason"))
            if manifest.get("schema_changed"):  # every pair is listed: the night's table is its rows
                con.execute(f"CREATE OR REPLACE TABLE t AS SELECT {columns} FROM {c} WHERE change <> 'withdraw'")
            else:
                con.execute(f"DELETE FROM t USING {c} c WHERE {' AND '.join(f't.{q(k)} = c.{q(k)}' for k in KEY)}")
                con.execute(f"INSERT INTO t SELECT {columns} FROM {c} WHERE change <> 'withdraw'")
            stamps = manifest["stamps"]
            con.execute(f"UPDATE t SET {', '.join(f'{q(s)} = ?' for s in STAMPS)}", [stamps[s] for s in STAMPS])
            if (n := con.execute("SELECT count(*) FROM t").fetchone()[0]) != manifest["rows"]:
                raise RebuildError(f"{changes}: gives {n:,} rows where the manifest of {day} counts {manifest['rows']:,}")
        con.execute(f"CREATE TABLE eligibility AS SELECT * FROM t ORDER BY {', '.join(KEY)}")
        con.execute(f"COPY eligibility TO {lit(str(folder / FULL))} (FORMAT parquet)")
        excel_csv(con, "SELECT * FROM eligibility", folder / "eligibility.csv")
    except duckdb.Error as exc:
        raise RebuildError(f"{bank_dir.name}: a change file cannot be read or applied ({str(exc).splitlines()[0]})") from None
    finally:
        con.close()


def rebuild(bank_dir: Path, as_of: date, start: date, out: Path) -> Path:
    """The full table of `as_of` rebuilt from the full table of the earlier date `start` and the change
    files of every publication between them (following each manifest's `base`), written to the new or
    empty folder `out` as `eligibility.parquet` and `eligibility.csv`, as publication writes them;
    refused, naming the file, where a folder does not lead back to `start`, a change file does not
    give the rows its manifest counts, or the result is not the table published."""
    bank_dir, out = Path(bank_dir), Path(out)
    if start > as_of:
        raise RebuildError(f"--from {start} is after the date to rebuild, {as_of}")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RebuildError(f"{out}: exists and is not an empty folder")
    if out.resolve().is_relative_to(bank_dir.parent.resolve()):
        raise RebuildError(f"{out}: inside the publication folder {bank_dir.parent}; choose a folder outside it")
    chain, day = [], as_of
    while day != start:
        folder = bank_dir / day.isoformat()
        manifest = _manifest(folder)
        base = _day(manifest["base"]) if manifest["base"] else None
        if base is not None and base >= day:  # a base must be older: a chain that loops is a damaged folder
            raise RebuildError(f"{folder / MANIFEST}: base {base} is not before {day}")
        if base is None or base < start:
            raise RebuildError(f"{bank_dir.name}: the changes of {as_of} do not lead back to {start}: the changes of "
                               f"{day} are against {base or 'nothing (the first publication)'}")
        chain.append((day, manifest))
        day = base
    first = bank_dir / start.isoformat() / FULL
    if not first.is_file():
        raise RebuildError(f"{first}: no full table to start from")
    expected = file_sha256(first)
    for day, manifest in reversed(chain):
        if manifest["base_sha256"] != expected:
            raise RebuildError(f"{bank_dir / day.isoformat() / MANIFEST}: its changes were made against another table "
                               f"of {manifest['base']} than the one there now (published again since): start from "
                               f"{day} or later")
        expected = manifest["table_sha256"]
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _apply_chain(bank_dir, first, chain, tmp)
        if chain and file_sha256(tmp / FULL) != chain[0][1]["table_sha256"]:
            raise RebuildError(f"{bank_dir.name} {as_of}: the rebuilt table is not the table published (SHA-256 "
                               "differs): a change file or a full table was altered")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written is left
        raise
    if out.exists():
        out.rmdir()
    os.replace(tmp, out)
    return out / FULL

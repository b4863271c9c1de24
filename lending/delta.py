"""Change files: what changed in a bank's publication since the one before, and the full table of any
date rebuilt from the last full one and the changes since.

Every night each bank's folder gets `changes.parquet` and `changes.csv`: one row per (firm, product)
pair inserted, updated or withdrawn since the bank's previous publication (its newest earlier date
folder, named `base` in the folder's `manifest.json`), with the reason of a withdrawal, or of an
eligibility lost. The full table (`eligibility.parquet`, its CSV and workbook) comes on a cycle: on
the bank's days of the week (`full_table_on` in the product catalogue, Monday unless it says
otherwise), on its first publication, when the full table the night's changes would start from is
a week old or more (a Monday without a night) or cannot be followed back to, for a backfill, when
the table's columns change, and when a date is published again over a folder that held one (with
that folder's reason: a re-run's manifest is the one it replaces). The manifest says which
(`full_table`: the reason, or null). When a night is published again, the next night whose changes
were against it gets its full table rebuilt into the programme's own copies (`kept_root`, beside
the publication folder and outside it: a table written after the night may hold a firm that has
withdrawn its consent since, and nothing new about such a firm may reach a bank), so that the later
nights can still be rebuilt here (`keep_later_nights_whole`). Between them a bank applies the nights' change files to the last full table;
`load_table` and `rebuild` do the same here. The withdrawals' and updates' reasons:

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
the result against the published table's SHA-256 (computed every night, full table written or not),
and writes it as publication does: the date's full table, byte for byte.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from valuecredit.backup import file_sha256
from valuecredit.spreadsheet import excel_csv
from valuecredit.sqltext import SQL, lit, q, type_name

KEY = ("uscc", "product_id")
STAMPS = ("as_of", "snapshot_id")  # one value per night on every row: in the manifest, not in the changes
CHANGES, MANIFEST, FULL = "changes.parquet", "manifest.json", "eligibility.parquet"
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # as `full_table_on` spells them; ISO order
FULL_TABLE_AT_MOST_DAYS_APART = 7  # a bank never applies more than a week of change files
REASONS = {
    "authorisation_ended": "授权终止、撤回或暂不可核实 / the firm's authorisation ended, was revoked or cannot be verified",
    "left_programme": "企业不再参评(注销、吊销或迁出) / the firm is no longer decided on",
    "product_ended": "产品已下线 / the product left the bank's catalogue",
    "vetoed": "被准入门槛否决(如负面清单) / a gate now closes the pair",
    "no_longer_eligible": "不再满足产品条件 / the firm now misses a condition",
}


@dataclass(frozen=True)
class Stored:
    """The bank's table in the store before tonight's: a copy (`table_sql`), the date it holds and the
    SHA-256 of that date's full table as published (recorded when the store committed it)."""
    table_sql: SQL
    as_of: date
    table_sha256: str | None


class RebuildError(RuntimeError):
    """Change files cannot be written or a date's table cannot be rebuilt from the folders as they are;
    the message says which file and why."""


MEND_KEYS = ("full_table", "full_table_sha256")  # what a kept copy's manifest adds to the night's


def _write_manifest(path: Path, manifest: dict) -> None:
    """A manifest as publication writes it (UTF-8, one key a line, the dates as text); written beside
    and moved over the old one, so that a crash leaves either manifest whole, never half of one."""
    aside = path.with_name(f".{path.name}.partial")
    aside.write_text(json.dumps(manifest, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(aside, path)


def kept_root(publish_dir: Path) -> Path:
    """The programme's own copies of full tables no bank received: beside the publication folder
    (`publish/` -> `.publish.kept/`), outside it, so that nothing shipping `publish/` ships them."""
    publish_dir = Path(publish_dir).resolve()  # `.` or `publish/..` name a folder whose name is not in the text
    return publish_dir.parent / f".{publish_dir.name}.kept"


def kept_bank_dir(bank_dir: Path) -> Path:
    """The programme's own copies of the bank's nights, one folder a date."""
    return kept_root(Path(bank_dir).parent) / Path(bank_dir).name


def kept_folder(bank_dir: Path, day: date) -> Path:
    """Where the programme keeps the full table of the bank's night `day` that it rebuilt for itself."""
    return kept_bank_dir(bank_dir) / day.isoformat()


def _kept_copy_valid(bank_dir: Path, day: date) -> bool:
    """Whether the kept copy of `day` is the table the bank's folder of `day` names: its manifest is
    that folder's (but for why it was kept and the file's own SHA-256) and the folder has no full
    table of its own (a copy of a night published again since, or made whole, is stale)."""
    copy, folder = kept_folder(bank_dir, day), Path(bank_dir) / day.isoformat()
    if not (copy / FULL).is_file() or (folder / FULL).is_file():
        return False
    try:
        kept, night = _manifest(copy), _manifest(folder)
    except RebuildError:
        return False
    return {k: v for k, v in kept.items() if k not in MEND_KEYS} == {k: v for k, v in night.items() if k not in MEND_KEYS}


def full_table_of(bank_dir: Path, day: date, kept: bool = True) -> Path | None:
    """The full table of the bank's night `day`: its folder's, else (`kept`) the programme's own copy
    while it is the table that folder's manifest names (`_kept_copy_valid`)."""
    own = Path(bank_dir) / day.isoformat() / FULL
    if own.is_file():
        return own
    return kept_folder(bank_dir, day) / FULL if kept and _kept_copy_valid(bank_dir, day) else None


def tidy_kept(bank_dir: Path) -> None:
    """The bank's kept copies that no longer stand for their night go (the night published again, or
    its folder gone: a copy may hold a firm that has withdrawn since, so none is kept longer than it
    is needed), with what a crashed keep left. Before the old place was moved out of the banks'
    folders, a kept table was written into the night's own folder: it goes to the kept copies, and
    the night's manifest is again the one the bank received."""
    bank_dir = Path(bank_dir)
    for day in _published_days(bank_dir):
        folder = bank_dir / day.isoformat()
        try:
            manifest = _manifest(folder)
        except RebuildError:
            continue
        # only that keep wrote `full_table_sha256` into a bank's manifest (a night re-run over such a
        # folder inherited its reason, not the key: its full table is the bank's own)
        if "full_table_sha256" not in manifest:
            continue
        if (folder / FULL).is_file():  # each step is whole, so a crash at any point is taken up next time
            copy = kept_folder(bank_dir, day)
            aside = copy.with_name(f".{day.isoformat()}.partial")
            shutil.rmtree(aside, ignore_errors=True)
            aside.mkdir(parents=True)
            shutil.copy2(folder / FULL, aside / FULL)
            _write_manifest(aside / MANIFEST, manifest)
            shutil.rmtree(copy, ignore_errors=True)
            os.replace(aside, copy)
            (folder / FULL).unlink()
        (folder / "eligibility.csv").unlink(missing_ok=True)
        _write_manifest(folder / MANIFEST, {k: v for k, v in manifest.items() if k != "full_table_sha256"}
                        | {"full_table": None})
    root = kept_bank_dir(bank_dir)
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        day = _day(path.name)
        if day is None or not _kept_copy_valid(bank_dir, day):
            shutil.rmtree(path, ignore_errors=True)
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()


def _day(name: str) -> date | None:
    """The date a folder is named after, written as publication writes it (YYYY-MM-DD), else None."""
    try:
        day = date.fromisoformat(name)
    except ValueError:
        return None
    return day if day.isoformat() == name else None


def _published(folder: Path) -> bool:
    """A date folder publication wrote (a full table or a manifest in it; not a half-written one)."""
    return (folder / FULL).is_file() or (folder / MANIFEST).is_file()


def _published_days(bank_dir: Path) -> list[date]:
    """The dates of the bank's published folders."""
    return [day for path in (Path(bank_dir).iterdir() if Path(bank_dir).is_dir() else ())
            if (day := _day(path.name)) is not None and _published(path)]


def previous_publication(bank_dir: Path, as_of: date) -> date | None:
    """The bank's newest publication before `as_of` (what tonight's changes are against)."""
    return max((day for day in _published_days(bank_dir) if day < as_of), default=None)


def full_table_reason(bank_dir: Path, as_of: date, weekdays: frozenset[int], backfill: bool = False) -> str | None:
    """Why the bank's folder of `as_of` gets the full table, or None when the change files are enough.
    `weekdays`: the bank's days for it (ISO, Monday 1)."""
    previous = previous_publication(bank_dir, as_of)
    if previous is None:
        return "first publication"
    try:
        # the bank's own last full table: a copy the programme kept for itself never reached the bank
        last = _day(chain_to(bank_dir, previous, kept=False)[0].parent.name)
    except RebuildError:  # the full table is gone, or the changes since cannot be followed to it
        return "no full table before"
    if backfill:  # a past date published after newer ones is for rebuilding that date: whole
        return "backfill"
    if as_of.isoweekday() in weekdays:
        return f"weekly ({WEEKDAYS[as_of.isoweekday() - 1]})"
    if (as_of - last).days >= FULL_TABLE_AT_MOST_DAYS_APART:
        return f"{(as_of - last).days} days since the full table of {last}"
    replaced = Path(bank_dir) / as_of.isoformat()
    if (replaced / FULL).is_file():  # later nights' changes may start from it: its reason again, the same bytes
        try:
            return _manifest(replaced).get("full_table") or "published again over a full table"
        except RebuildError:
            return "published again over a full table"
    return None


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
    else:  # a re-publication: unless both the base and the version the bank may already hold have it as tonight
        changed_sql = " OR ".join(f"NOT EXISTS (SELECT 1 FROM {prior_sql} r WHERE {_match_sql('n', 'r')} AND "
                                  f"NOT ({_differs_sql(compared, 'r')}))" for prior_sql in priors_sql)
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
                  bank_id: str, authorised: SQL, backfill: bool = False, full_reason: str | None = "every night",
                  stored: Stored | None = None) -> dict:
    """The date's change files and manifest into `folder` (the bank's date folder being written, whose
    full table is already in it: its SHA-256 goes into the manifest, and the caller removes it when the
    manifest's `full_table` is null). `backfill`: a past date published after newer ones. `full_reason`:
    why the full table stays (`full_table_reason`), None when it goes; a change of columns keeps it too.
    `stored`: the bank's table as it stood before tonight's, read in place of a folder without its full
    table when it is the table that folder was published with."""
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
    replaced = bank_dir / as_of.isoformat()  # this date published before: it may have reached the bank
    loaded: list[str] = []
    try:
        priors_sql = [_prior_sql(con, bank_dir, day, stored, loaded)
                      for day in (base_day, as_of if _published(replaced) else None) if day is not None]
        if base_day is None and len(priors_sql) == 1:  # a first publication published again: its base is nothing
            priors_sql = [f"(SELECT * FROM {table} WHERE false)", *priors_sql]
        columns = _columns(con, table)
        schema_changed = any(_columns(con, prior_sql) != columns for prior_sql in priors_sql)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _changes AS "
                    f"{changes_sql(table, columns, priors_sql, schema_changed, as_of, bank_id, authorised)}")
    finally:
        for name in loaded:
            con.execute(f"DROP TABLE IF EXISTS {name}")
    try:
        con.execute(f"COPY _changes TO {lit(str(folder / CHANGES))} (FORMAT parquet)")
        excel_csv(con, "SELECT * FROM _changes", folder / "changes.csv")
        counts = dict(con.execute("SELECT change, count(*) FROM _changes GROUP BY change").fetchall())
        reasons = dict(con.execute("SELECT reason, count(*) FROM _changes WHERE reason IS NOT NULL GROUP BY reason "
                                   "ORDER BY reason").fetchall())
    finally:
        con.execute("DROP TABLE _changes")
    if schema_changed and full_reason in (None, "published again over a full table"):
        full_reason = "columns changed"  # every pair is listed anyway: the full table costs nothing more
    manifest = {"bank_id": bank_id, "as_of": as_of.isoformat(), "base": base_day.isoformat() if base_day else None,
                "base_sha256": _table_sha256(bank_dir / base_day.isoformat()) if base_day else None,
                "backfill": backfill, "schema_changed": schema_changed, "full_table": full_reason,
                "stamps": stamps, "rows": total, "table_sha256": file_sha256(folder / FULL),
                "changes": {k: counts.get(k, 0) for k in ("insert", "update", "withdraw")}, "reasons": reasons,
                "duckdb": duckdb.__version__}
    _write_manifest(folder / MANIFEST, manifest)
    return manifest


def _prior_sql(con: duckdb.DuckDBPyConnection, bank_dir: Path, day: date, stored: Stored | None,
               loaded: list[str]) -> SQL:
    """The bank's published table of `day`: its folder's full table; else the stored copy when it is the
    table that folder was published with (the same date and SHA-256: a publication whose store
    committed but whose folder never reached its place is not); else rebuilt from the last full table
    and the change files since (a temporary table, named in `loaded` for the caller to drop)."""
    folder = bank_dir / day.isoformat()
    if (full := full_table_of(bank_dir, day)) is not None:
        return f"read_parquet({lit(str(full))})"
    if stored is not None and (stored.as_of, stored.table_sha256) == (day, _manifest(folder)["table_sha256"]):
        return stored.table_sql
    name = f"_prior_{len(loaded)}"
    loaded.append(name)
    load_table(con, name, bank_dir, day)
    return name


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


def keep_later_nights_whole(bank_dir: Path, as_of: date) -> list[date]:
    """Before the folder of `as_of` is replaced (a date published again): the next night whose changes
    are against it, if it has no full table of its own, gets one, rebuilt (and checked) from the
    folders as they still are, so that it and the nights after it can still be rebuilt once their
    base is gone. The table goes to the programme's own copies (`kept_folder`), not to the bank's
    folder, which stays as the bank received it: written now, it may hold a firm that has withdrawn
    its consent since the night. Its manifest there is the night's, with why it was kept (`full_table`)
    and the file's own SHA-256 (`full_table_sha256`: it differs from `table_sha256` only where another
    DuckDB wrote it). Written into a folder beside and moved in whole. Returns the nights kept whole;
    one that cannot be rebuilt already is left as it is."""
    bank_dir, kept = Path(bank_dir), []
    for day in sorted(d for d in _published_days(bank_dir) if d > as_of):
        try:
            manifest = _manifest(bank_dir / day.isoformat())
        except RebuildError:
            continue
        if manifest["base"] != as_of.isoformat() or full_table_of(bank_dir, day) is not None:
            continue
        final = kept_folder(bank_dir, day)
        aside = final.with_name(f".{day.isoformat()}.partial")
        shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir(parents=True)
        con = duckdb.connect(":memory:")
        try:
            load_table(con, "t", bank_dir, day, verify=False)
            sha = _write_as_published(con, "t", aside / FULL, manifest)  # checked here, written once
            manifest |= {"full_table": f"kept by the programme: the night of {as_of}, its base, published again",
                         "full_table_sha256": sha}
            _write_manifest(aside / MANIFEST, manifest)
            shutil.rmtree(final, ignore_errors=True)  # a copy of an earlier version of the night
            os.replace(aside, final)
        except RebuildError:
            continue
        finally:
            con.close()
            shutil.rmtree(aside, ignore_errors=True)
        kept.append(day)
    return kept


def chain_to(bank_dir: Path, as_of: date, start: date | None = None,
             kept: bool = True) -> tuple[Path, list[tuple[date, dict]]]:
    """The full table to start from and the nights whose change files lead from it to `as_of` (newest
    first, each with its manifest), following each manifest's `base` back to `start`, or (None) to the
    newest night on the way with a full table (`full_table_of`; `kept`: the programme's own copies
    count, as they do for rebuilding here, but not for what the bank itself received); refused,
    naming the folder, where the way does not lead there or a change file was made against another
    table than the one there now."""
    bank_dir = Path(bank_dir)
    if start is not None and start > as_of:
        raise RebuildError(f"--from {start} is after the date to rebuild, {as_of}")
    chain, day = [], as_of
    while True:
        first = full_table_of(bank_dir, day, kept) if start in (None, day) else None
        if day == start or first is not None:
            break
        folder = bank_dir / day.isoformat()
        manifest = _manifest(folder)
        base = _day(manifest["base"]) if manifest["base"] else None
        if base is not None and base >= day:  # a base must be older: a chain that loops is a damaged folder
            raise RebuildError(f"{folder / MANIFEST}: base {base} is not before {day}")
        if base is None or (start is not None and base < start):
            raise RebuildError(f"{bank_dir.name}: the changes of {as_of} do not lead back to "
                               f"{start or 'a full table'}: the changes of {day} are against "
                               f"{base or 'nothing (the first publication)'}")
        chain.append((day, manifest))
        day = base
    if first is None:
        raise RebuildError(f"{bank_dir / day.isoformat() / FULL}: no full table to start from")
    expected = file_sha256(first)
    if (first.parent / MANIFEST).is_file():  # a folder of before the manifests has nothing to check against
        own = _manifest(first.parent)
        if expected not in (own["table_sha256"], own.get("full_table_sha256")):
            raise RebuildError(f"{first}: not the table published that night (its SHA-256 differs from the manifest's)")
        expected = own["table_sha256"]  # the night's table as published, whatever DuckDB wrote it again
    for day, manifest in reversed(chain):
        if manifest["base_sha256"] != expected:
            raise RebuildError(f"{bank_dir / day.isoformat() / MANIFEST}: its changes were made against another table "
                               f"of {manifest['base']} than the one there now (published again since): start from "
                               f"{day} or later")
        expected = manifest["table_sha256"]
    return first, chain


def _write_as_published(con: duckdb.DuckDBPyConnection, name: SQL, path: Path, manifest: dict) -> str:
    """The table `name` written to `path` as publication writes it; its SHA-256, refused unless it is
    the table the night of `manifest` published (checked under the DuckDB version that published it:
    another one writes other bytes for the same rows)."""
    con.execute(f"COPY {name} TO {lit(str(path))} (FORMAT parquet)")
    sha = file_sha256(path)
    if manifest.get("duckdb") in (None, duckdb.__version__) and sha != manifest["table_sha256"]:
        raise RebuildError(f"{manifest.get('bank_id', '')} {manifest.get('as_of', '')}: the table rebuilt from the "
                           "change files is not the table published (SHA-256 differs): a change file or a full "
                           "table was altered")
    return sha


def load_table(con: duckdb.DuckDBPyConnection, name: SQL, bank_dir: Path, as_of: date, start: date | None = None,
               verify: bool = True, temporary: bool = True) -> list[tuple[date, dict]]:
    """The bank's published table of `as_of` as the table `name` of `con` (`temporary` unless asked), ordered as
    published: its folder's full table, or the last full table (`start`'s, if given) with the change
    files since applied, each step's rows counted against its manifest and (`verify`) the result's
    SHA-256, written as publication writes it, against the one published (under the DuckDB version
    that published it: another one writes other bytes for the same rows). Returns the nights whose
    changes were applied (`chain_to`)."""
    first, chain = chain_to(bank_dir, as_of, start)
    kind = "TEMP TABLE" if temporary else "TABLE"
    if not chain:  # the night's own full table, checked against its manifest: read as it is, in its order
        try:
            con.execute(f"CREATE OR REPLACE {kind} {name} AS SELECT * FROM read_parquet({lit(str(first))})")
        except duckdb.Error as exc:
            raise RebuildError(f"{first}: cannot be read ({str(exc).splitlines()[0]})") from None
        return chain
    work = f"{name}_work"
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {work} AS SELECT * FROM read_parquet({lit(str(first))})")
        for day, manifest in reversed(chain):
            changes = Path(bank_dir) / day.isoformat() / CHANGES
            if not changes.is_file():
                raise RebuildError(f"{changes}: missing")
            c = f"read_parquet({lit(str(changes))})"
            columns = ", ".join(q(column) for column, _ in _columns(con, c) if column not in ("change", "reason"))
            if manifest.get("schema_changed"):  # every pair is listed: the night's table is its rows
                con.execute(f"CREATE OR REPLACE TEMP TABLE {work} AS SELECT {columns} FROM {c} WHERE change <> 'withdraw'")
            else:
                con.execute(f"DELETE FROM {work} t USING {c} c WHERE {' AND '.join(f't.{q(k)} = c.{q(k)}' for k in KEY)}")
                con.execute(f"INSERT INTO {work} SELECT {columns} FROM {c} WHERE change <> 'withdraw'")
            stamps = manifest["stamps"]
            con.execute(f"UPDATE {work} SET {', '.join(f'{q(s)} = ?' for s in STAMPS)}", [stamps[s] for s in STAMPS])
            if (n := con.execute(f"SELECT count(*) FROM {work}").fetchone()[0]) != manifest["rows"]:
                raise RebuildError(f"{changes}: gives {n:,} rows where the manifest of {day} counts {manifest['rows']:,}")
        con.execute(f"CREATE OR REPLACE {kind} {name} AS SELECT * FROM {work} ORDER BY {', '.join(KEY)}")
        if verify and chain[0][1].get("duckdb") == duckdb.__version__:  # nothing to compare the bytes with otherwise
            with tempfile.TemporaryDirectory(prefix="valuecredit-rebuild-") as tmp:
                _write_as_published(con, name, Path(tmp) / FULL, chain[0][1])
    except duckdb.Error as exc:
        raise RebuildError(f"{Path(bank_dir).name}: a change file cannot be read or applied "
                           f"({str(exc).splitlines()[0]})") from None
    finally:
        con.execute(f"DROP TABLE IF EXISTS {work}")
    return chain


def rebuild(bank_dir: Path, as_of: date, start: date | None, out: Path) -> Path:
    """The full table of `as_of` rebuilt from the full table of the earlier date `start` (None: the
    last full table before it) and the change files of every publication between them (following each
    manifest's `base`), written to the new or empty folder `out` as `eligibility.parquet` and
    `eligibility.csv`, as publication writes them; refused, naming the file, where a folder does not
    lead back to `start`, a change file does not give the rows its manifest counts, or the result is
    not the table published."""
    bank_dir, out = Path(bank_dir), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RebuildError(f"{out}: exists and is not an empty folder")
    if out.resolve().is_relative_to(bank_dir.parent.resolve()):
        raise RebuildError(f"{out}: inside the publication folder {bank_dir.parent}; choose a folder outside it")
    tmp = out.with_name(f".{out.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    con = duckdb.connect(":memory:")
    try:
        chain = load_table(con, "eligibility", bank_dir, as_of, start, verify=False)
        if chain and (published_with := chain[0][1].get("duckdb")) not in (None, duckdb.__version__):
            raise RebuildError(f"{bank_dir.name} {as_of}: published with DuckDB {published_with}, this is "
                               f"{duckdb.__version__}: a table it writes cannot be the same bytes (read the night's "
                               "rows with `valuecredit bank query` instead)")
        if chain:
            _write_as_published(con, "eligibility", tmp / FULL, chain[0][1])
        else:
            con.execute(f"COPY eligibility TO {lit(str(tmp / FULL))} (FORMAT parquet)")
        excel_csv(con, "SELECT * FROM eligibility", tmp / "eligibility.csv")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written is left
        raise
    finally:
        con.close()
    if out.exists():
        out.rmdir()
    os.replace(tmp, out)
    return out / FULL

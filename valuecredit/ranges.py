"""Tables kept by validity range: a row with the nights it holds for, instead of a copy per night.

Most of a night's rows are the previous night's again (a firm whose data did not change keeps its
explanation and its eligibility for each product). A ranged table `s.t` is stored as `s.t_ranges`:
its columns without `as_of`, plus `valid_from` and `valid_to` (exclusive; 9999-12-31 while the row
still holds). `meta.nights_held` lists the nights written for each table, and the view `s.t` gives
the rows of every night held, with `as_of`, as the per-night table did: readers are unchanged, and a
night never written shows no row even where a range spans it.

Writing night D (`write_night`) compares D's rows with the ranges covering D and touches only the
difference: a row no longer there is cut out of D (kept before D, and from the next night held after
D if its range reached that far), a new row is inserted for [D, next night held). Run again with the
same rows, a night changes nothing; run for a past night, it splits the ranges around it. Storage
grows with change, not with nights.

Two kinds of column change every night for every firm by themselves and would end every range after
one night; they are kept in another form and given back by the view as written:
- a stamp (`STAMPS`: the night's data snapshot) holds one value for all of a night's rows: it is kept
  once, beside the night in `meta.nights_held`, and is NULL in the ranges;
- a count of years since a date (`YEAR_COUNTS`: the years in operation) is kept as the date it counts
  from (`<name>__since`) and counted again for each night the row holds; a value that count does not
  give back bit for bit (one not written as such a count) is kept as written (`<name>__else`).
"""

from __future__ import annotations

from datetime import date

import duckdb

from valuecredit.columns import add_columns, add_missing_columns, columns_of
from valuecredit.sqltext import SQL, lit, q, type_name
from valuecredit.transactions import atomically

# ranged table -> the columns that identify a row within a night (None: every column does; the
# night's identical rows are then told apart by their copy number)
RANGED: dict[str, tuple[str, ...] | None] = {
    "features.indicators": ("uscc",),
    "scores.peer_groups": None,  # one row per firm, unless the registry shows a firm twice (kept as it is)
    "features.pd_inputs": ("uscc",),
    "scores.commercial_value": ("uscc",),
    "scores.pd": ("uscc",),
    "scores.explanations": ("uscc", "feature"),
    "scores.negative_hits": None,
    "decisions.eligibility_firms": ("uscc",),
    "decisions.eligibility_pairs": ("uscc", "product_id"),
}
STAMPS = ("snapshot_id",)  # one value per night: kept in meta.nights_held (VARCHAR)
YEAR_COUNTS = ("years_in_operation",)  # date_diff('day', since, night) / YEAR_DAYS: kept as `since`
YEAR_DAYS = "365.25"  # the days in a year of operation (`counted_sql`, which the producers count with)
SINCE, AS_WRITTEN = "__since", "__else"
NIGHTS = "meta.nights_held"
PAIRING_ROWS = 20_000_000  # rows of a night paired in one piece (the part's hash table stays in memory)
OPEN = "DATE '9999-12-31'"  # not 'infinity', which pandas cannot hold


def ranges_of(table: str) -> SQL:
    schema, name = table.split(".")
    return f"{q(schema)}.{q(name + '_ranges')}"


def relation(table: str) -> SQL:
    schema, name = table.split(".")
    return f"{q(schema)}.{q(name)}"


def table_kind(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    """'BASE TABLE', 'VIEW' or None for `table` in the store's own catalogue."""
    schema, name = table.split(".")
    row = con.execute("SELECT table_type FROM information_schema.tables WHERE table_catalog = current_database() "
                      "AND table_schema = ? AND table_name = ?", [schema, name]).fetchall()
    return row[0][0] if row else None


def _columns(con: duckdb.DuckDBPyConnection, relation: SQL) -> list[str]:
    return [c for c, _ in columns_of(con, relation)]


def counted_sql(since: SQL, night: SQL) -> SQL:
    """The years from `since` to `night`: how the producers count the years in operation, and how
    the view counts them again from the date kept."""
    return f"date_diff('day', {since}, {night}) / {YEAR_DAYS}"


def _stored_sql(columns: list[tuple[str, str]], d: SQL, stamps: tuple[str, ...] = STAMPS) -> SQL:
    """The select list giving a night's rows (`columns`, `as_of` left out) in the ranges' form on night
    `d`; `stamps`: the stamp columns kept beside the night (one value in all its rows)."""
    out = []
    for c, _ in columns:
        if c == "as_of":
            continue
        if c in STAMPS:  # kept beside the night when all its rows hold one (`stamps`), else on each row
            out.append(f"CAST(NULL AS VARCHAR) AS {q(c)}" if c in stamps else f"CAST({q(c)} AS VARCHAR) AS {q(c)}")
        elif c in YEAR_COUNTS:
            value = f"CAST({q(c)} AS DOUBLE)"
            # the date the value counts from (none for NaN, infinite or absurd values), if counting from it
            # gives the value back bit for bit; else the value as written, which then holds from night to night
            since = f"CASE WHEN isfinite({value}) AND abs({value}) < 100000 THEN {d} - CAST(round({value} * {YEAR_DAYS}) AS INTEGER) END"
            counted = counted_sql(since, d)
            exact = f"{counted} IS NOT DISTINCT FROM {value} AND signbit({counted}) IS NOT DISTINCT FROM signbit({value})"
            out.append(f"CASE WHEN {exact} THEN {since} END AS {q(c + SINCE)}")
            out.append(f"CASE WHEN {exact} THEN NULL ELSE {value} END AS {q(c + AS_WRITTEN)}")
        else:
            out.append(q(c))
    return ", ".join(out)


def _stored(con: duckdb.DuckDBPyConnection, relation: SQL, d: SQL = "DATE '2000-01-01'",
            stamps: tuple[str, ...] = STAMPS) -> SQL:
    """`relation`'s rows in the ranges' form on night `d` (its shape alone, when `d` is left as it is)."""
    return f"(SELECT {_stored_sql(columns_of(con, relation), d, stamps)} FROM {relation})"


def _shown_sql(cols: list[str]) -> SQL:
    """The view's columns from the ranges' (`r`) and the night's (`n`): each as the per-night table had it,
    `as_of` second, after the firm."""
    shown = [f"r.{q(cols[0])}", "n.as_of"]
    for c in cols[1:]:
        if c.endswith(AS_WRITTEN):
            continue
        if c.endswith(SINCE):
            name = c[:-len(SINCE)]
            shown.append(f"coalesce(r.{q(name + AS_WRITTEN)}, {counted_sql('r.' + q(c), 'n.as_of')}) AS {q(name)}")
        elif c in STAMPS:
            shown.append(f"coalesce(r.{q(c)}, n.{q(c)}) AS {q(c)}")
        else:
            shown.append(f"r.{q(c)}")
    return ", ".join(shown)


def _create_view(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """The per-night view over the ranges, in the per-night table's shape."""
    cols = [c for c in _columns(con, ranges_of(table)) if c not in ("valid_from", "valid_to")]
    con.execute(f"CREATE OR REPLACE VIEW {relation(table)} AS SELECT {_shown_sql(cols)} FROM {ranges_of(table)} r "
                f"JOIN {NIGHTS} n ON n.table_name = {lit(table)} AND n.as_of >= r.valid_from AND n.as_of < r.valid_to")


def ensure_ranged(con: duckdb.DuckDBPyConnection, table: str, shape: SQL) -> None:
    """Create `table`'s ranges and view from `shape` (a relation with the night's columns, `as_of`
    among them) where missing, and give the ranges the columns `shape` has that they lack (NULL in
    the rows they hold). A per-night table written by an earlier version is moved into ranges, night
    by night, all or nothing (a move cut short leaves the per-night table as it was)."""
    with atomically(con):
        _ensure_ranged(con, table, shape)


def _ensure_ranged(con: duckdb.DuckDBPyConnection, table: str, shape: SQL) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(f"CREATE TABLE IF NOT EXISTS {NIGHTS} (table_name VARCHAR, as_of DATE)")
    add_columns(con, NIGHTS, [(stamp, "VARCHAR") for stamp in STAMPS], set(_columns(con, NIGHTS)))
    ranges = ranges_of(table)
    kind = table_kind(con, table)
    # a per-night table's own column types first: its nights keep the types they were written in, as
    # its inserts by name kept them (a score's DECIMAL scale follows the catalogue's weights)
    stored = _stored(con, shape)
    first = _stored(con, relation(table)) if kind == "BASE TABLE" else stored
    con.execute(f"CREATE TABLE IF NOT EXISTS {ranges} AS SELECT *, NULL::DATE AS valid_from, "
                f"NULL::DATE AS valid_to FROM {first} WHERE false")
    add_missing_columns(con, ranges, stored)
    if kind == "BASE TABLE":
        _move_into_ranges(con, table)
    else:  # made again every time: a view an earlier version made holds that version's columns
        _create_view(con, table)


def _move_into_ranges(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """A per-night table of an earlier version becomes ranges: each of its nights written in order."""
    schema, name = table.split(".")
    old: SQL = f"{q(schema)}.{q(name + '_per_night')}"
    con.execute(f"ALTER TABLE {relation(table)} RENAME TO {q(name + '_per_night')}")
    add_missing_columns(con, ranges_of(table), _stored(con, old))  # a column no night writes any more keeps what it held
    _create_view(con, table)
    # as a date: a table an earlier version wrote from a DataFrame holds its nights as timestamps
    for (night,) in con.execute(f"SELECT DISTINCT CAST(as_of AS DATE) FROM {old} ORDER BY 1").fetchall():
        write_night(con, table, night, f"SELECT * FROM {old} WHERE CAST(as_of AS DATE) = DATE {lit(night.isoformat())}",
                    moving=True)
    con.execute(f"DROP TABLE {old}")


def nights_held(con: duckdb.DuckDBPyConnection, table: str) -> list[date]:
    return [d for (d,) in con.execute(f"SELECT as_of FROM {NIGHTS} WHERE table_name = ? ORDER BY as_of",
                                      [table]).fetchall()]


def _night_rows(con: duckdb.DuckDBPyConnection, table: str, select: SQL, columns: list[tuple[str, str]]) -> SQL:
    """`select`'s rows in the ranges' columns and types (a row and its equal then hash alike, so they
    fall in the same part): one it does not have is NULL (a column no night writes any more), as an
    insert by name into the per-night table made it; one the ranges lack is refused, as that insert
    refused it."""
    has = set(_columns(con, f"({select})"))
    if extra := has - {c for c, _ in columns} - {"as_of"}:
        raise ValueError(f"{table}: the night's rows have columns the table does not: {', '.join(sorted(extra))}")
    return ("SELECT " + ", ".join(f"CAST({q(c)} AS {type_name(t)}) AS {q(c)}" if c in has else
                                  f"CAST(NULL AS {type_name(t)}) AS {q(c)}" for c, t in columns) + f" FROM ({select})")


def write_night(con: duckdb.DuckDBPyConnection, table: str, as_of: date, select: SQL, moving: bool = False) -> None:
    """Make `table`'s rows on `as_of` the rows of `select` (inside the caller's transaction), writing
    only what differs from the ranges that cover the night. A night whose stamp is not one value is
    refused, unless `moving` a night an earlier version wrote (its rows then keep their own)."""
    ranges, key = ranges_of(table), RANGED[table]
    d = f"DATE {lit(as_of.isoformat())}"
    later = [n for n in nights_held(con, table) if n > as_of]
    nxt = f"DATE {lit(later[0].isoformat())}" if later else OPEN
    covering = f"valid_from <= {d} AND {d} < valid_to"
    columns = columns_of(con, f"(SELECT * EXCLUDE (valid_from, valid_to) FROM {ranges})")
    cols = [c for c, _ in columns]
    stamps: dict[str, str | None] = {}
    if stamped := [c for c in STAMPS if c in _columns(con, f"({select})")]:
        # the night's rows once: their stamps are read from them, then they are paired
        con.execute(f"CREATE OR REPLACE TEMP TABLE _night_stamped AS {select}")
        select = "SELECT * FROM _night_stamped"
        stamps = {c: value for c in stamped if (value := _stamp(con, table, as_of, c, moving)) is not MIXED}
    night = _night_rows(con, table, f"SELECT * FROM {_stored(con, f'({select})', d, tuple(stamps))}", columns)
    covered = con.execute(f"SELECT count(*) FROM {ranges} WHERE {covering}").fetchone()[0]
    if not covered:
        # nothing to compare with (a first night, or a night before every other): insert as computed
        con.execute(f"INSERT INTO {ranges} BY NAME SELECT *, {d} AS valid_from, {nxt} AS valid_to FROM ({night})")
    else:
        # identical rows pair up; what is left on either side is the night's change. Rows with no key
        # are paired copy by copy (a night may hold the same hit twice). A double's sign is compared
        # too: -0.0 equals 0.0, but the night must read back the bits it wrote.
        copy = "" if key else f", row_number() OVER (PARTITION BY {', '.join(q(c) for c in cols)}) AS _copy"
        same = [f"c.{q(k)} = t.{q(k)}" for k in (key or ())] + [
            f"c.{q(c)} IS NOT DISTINCT FROM t.{q(c)}" for c in cols if c not in (key or ())] + [
            f"signbit(c.{q(c)}) IS NOT DISTINCT FROM signbit(t.{q(c)})" for c, t in columns if t in ("DOUBLE", "FLOAT")]
        if not key:
            same.append("c._copy = t._copy")
        # in parts by the firm's hash, each of a size DuckDB pairs in memory: 70,000,000 pairs in one
        # piece spilled to disk under the store's 4 GB limit (20.0 s, 4.1 GiB; in four parts 11.4 s, 2.9 GiB)
        parts = -(-covered // PAIRING_ROWS)
        for part in range(parts):
            cut = f"hash({q(cols[0])}) % {int(parts)} = {int(part)}" if parts > 1 else "true"
            con.execute(f"""{'CREATE OR REPLACE TEMP TABLE _night_change AS' if part == 0 else 'INSERT INTO _night_change'}
                SELECT c._rid, t.* EXCLUDE (_present{', _copy' if not key else ''})
                FROM (SELECT rowid AS _rid, * {copy} FROM {ranges} WHERE {covering} AND {cut}) c
                FULL JOIN (SELECT *, true AS _present {copy} FROM ({night}) WHERE {cut}) t ON {' AND '.join(same)}
                WHERE c._rid IS NULL OR t._present IS NULL""")
        gone = "rowid IN (SELECT _rid FROM _night_change WHERE _rid IS NOT NULL)"
        if later:  # a row that no longer holds on the night still holds from the next night its range reached
            con.execute(f"INSERT INTO {ranges} BY NAME SELECT * REPLACE ({nxt} AS valid_from) FROM {ranges} "
                        f"WHERE {gone} AND valid_to > {nxt}")
        con.execute(f"UPDATE {ranges} SET valid_to = {d} WHERE {gone} AND valid_from < {d}")
        con.execute(f"DELETE FROM {ranges} WHERE {gone} AND valid_from = {d}")
        con.execute(f"INSERT INTO {ranges} BY NAME SELECT * EXCLUDE (_rid), {d} AS valid_from, {nxt} AS valid_to "
                    f"FROM _night_change WHERE _rid IS NULL ORDER BY ALL")
        if key:
            _refuse_repeated_keys(con, table, as_of, key, covering)
        con.execute("DROP TABLE _night_change")
    con.execute(f"DELETE FROM {NIGHTS} WHERE table_name = ? AND as_of = ?", [table, as_of])
    names = ["table_name", "as_of", *stamps]
    con.execute(f"INSERT INTO {NIGHTS} ({', '.join(q(n) for n in names)}) VALUES ({', '.join('?' for _ in names)})",
                [table, as_of, *stamps.values()])
    con.execute("DROP TABLE IF EXISTS _night_stamped")


MIXED = object()  # a stamp column whose values differ between the rows of a night being moved in


def _stamp(con: duckdb.DuckDBPyConnection, table: str, as_of: date, column: str, moving: bool) -> str | None | object:
    """The one value `column` holds in all of the night's rows (`_night_stamped`; None in a night of
    none or of NULLs). Two values, or a value and NULL, are refused: a night's decisions rest on one
    data snapshot. A night an earlier version wrote so (`moving`: 'None' beside NULL, when it had no
    snapshot) is MIXED: its rows keep their own, nothing it holds is lost."""
    values, nulls, value = con.execute(f"SELECT count(DISTINCT {q(column)}), count(*) FILTER ({q(column)} IS NULL), "
                                       f"CAST(any_value({q(column)}) AS VARCHAR) FROM _night_stamped").fetchone()
    if values > 1 or (values and nulls):
        if moving:
            return MIXED
        raise ValueError(f"{table} on {as_of}: column {column} holds {values} values" + (" and NULL" if nulls else "")
                         + "; it stamps the night's data snapshot, and a night's rows rest on one")
    return value


class RepeatedKey(ValueError):
    """A night gave a keyed table two rows for one key."""


def _refuse_repeated_keys(con: duckdb.DuckDBPyConnection, table: str, as_of: date, key: tuple[str, ...],
                          covering: SQL) -> None:
    """A keyed table holds one row per key and night: a key the night wrote twice is refused, looked
    for among the keys the night changed (the whole night would cost a pass over all its rows). A
    row repeated exactly, values and all, pairs with the one range it matches and is kept once."""
    keys = ", ".join(q(k) for k in key)
    repeated = con.execute(f"""SELECT {keys} FROM {ranges_of(table)} WHERE {covering}
        AND ({keys}) IN (SELECT ({keys}) FROM _night_change WHERE _rid IS NULL)
        GROUP BY ALL HAVING count(*) > 1 ORDER BY ALL LIMIT 1""").fetchall()
    if repeated:
        raise RepeatedKey(f"{table} on {as_of}: two rows for {dict(zip(key, repeated[0]))}; the table holds one row "
                          "per key and night")

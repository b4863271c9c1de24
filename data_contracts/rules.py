"""Row-level quarantine rules, generated in DuckDB SQL from a contract.

The first rule a row breaks is its reason; the rule names are the simulator's fault classes, and
`control_character` (NUL, ESC, DEL, C1 in a text cell), which comes first: such a row is hostile or
broken whatever else it holds.
Duplicates are judged within a file among rows that pass every other rule: rows sharing a key with
different content are all quarantined (`duplicate_conflict`: nobody can tell which is right);
identical copies keep the first and quarantine the later ones (`duplicate_exact`). The same key in
a later file is a correction, not a duplicate.

Each value is cast once; rules read the typed value (`"col"`) and the value as delivered
(`"col__raw"`). The checked table keeps the typed values only: details and the row as delivered are
computed for the few rows that fail, joined back to the batch by file and row. Duplicates are found
by the hash of the key first (one cheap grouping that almost always finds nothing), then judged
exactly among the rows whose key hash repeats.
"""

from __future__ import annotations

from data_contracts.contracts import SQL_TYPES, Column, Contract
from valuecredit.sqltext import SQL, lit, q

PERIOD_PATTERN = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"
# Control characters no department means to send: C0 but tab, LF and CR (which a quoted CSV cell may
# hold), DEL and C1. NUL ends strings in C, ESC starts terminal escapes; neither is ever published.
TEXT_TYPES = ("uscc", "text", "period")
# C0 (but tab, LF, CR), DEL and C1; and the invisible format characters that make text read other than
# it is: zero-width spaces and joiners, bidirectional overrides and isolates (U+202E turns `exe.txt`
# into `txt.exe`), the byte-order mark inside text (RE2 syntax: DuckDB evaluates it)
CONTROL_PATTERN = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2066}-\x{2069}\x{FEFF}]"


def raw(name: str) -> SQL:
    return q(name + "__raw")


def has_control(col_sql: SQL) -> SQL:
    """SQL: the value as delivered holds a control character."""
    return f"coalesce(regexp_matches(CAST({col_sql} AS VARCHAR), {lit(CONTROL_PATTERN)}), false)"


def any_control(columns: list[str]) -> SQL:
    """SQL: some of the named text cells of the row, as delivered, holds a control character. One
    pass of the regular expression over the cells joined by a space (NULLs skipped) instead of one
    per cell: the per-cell checks then run only on the rare rows this flags (`_ctrl`)."""
    if not columns:
        return "false"
    return has_control("concat_ws(' ', " + ", ".join(f"CAST({q(c)} AS VARCHAR)" for c in columns) + ")")


def typed_expr(col: Column, strip_control: bool = False) -> SQL:
    """The typed value of a column as delivered (text from CSV, typed from Parquet); stripping
    control characters reads the row's `_ctrl` flag (`any_control`)."""
    c = raw(col.name)
    if col.type in TEXT_TYPES:
        plain = f"nullif(trim(CAST({c} AS VARCHAR)), '')"
        if strip_control:
            return (f"CASE WHEN _ctrl THEN nullif(trim(regexp_replace(CAST({c} AS VARCHAR), {lit(CONTROL_PATTERN)}, "
                    f"'', 'g')), '') ELSE {plain} END")
        return plain
    if col.type in ("int", "money"):
        # a whole number: its value as a double equals it as an integer. A cast to BIGINT alone rounds
        # 10.5 to 11 and 10.00004 to 10, and reads 0x10 as 16; a double is no number for 0x10 at all.
        # (Through a DECIMAL instead, fractions past its scale round away, and large doubles come out inexact.)
        return f"CASE WHEN TRY_CAST({c} AS DOUBLE) = TRY_CAST({c} AS BIGINT) THEN TRY_CAST({c} AS BIGINT) END"
    return f"TRY_CAST({c} AS {SQL_TYPES[col.type]})"


def raw_columns_sql(contract: Contract) -> SQL:
    """The batch's cells as delivered (`b."col"`), each named `"col__raw"`."""
    return ", ".join(f"b.{q(c)} AS {raw(c)}" for c in contract.column_names)


def _empty(col: Column) -> SQL:
    return f"nullif(trim(CAST({raw(col.name)} AS VARCHAR)), '') IS NULL"


def rules(contract: Contract, registry_join: bool) -> list[tuple[str, SQL, SQL]]:
    """(rule, condition, detail) in the order they apply, over typed and raw columns and
    `_delivered_on`; `_in_registry` says whether the firm is in the registry when `registry_join`."""
    out: list[tuple[str, SQL, SQL]] = []
    if contract.control_characters == "quarantine":  # text cells: in any other, a control character fails the type
        for col in (c for c in contract.columns if c.type in TEXT_TYPES):
            code = f"printf('%04X', unicode(regexp_extract(CAST({raw(col.name)} AS VARCHAR), {lit(CONTROL_PATTERN)})))"
            out.append(("control_character", f"_ctrl AND {has_control(raw(col.name))}",
                        f"{lit(f'{col.name} holds control character U+')} || {code}"))
    for k in contract.key:
        out.append(("key_null", f"{q(k)} IS NULL", lit(f"key column {k} is empty")))
    for col in contract.columns:
        if not col.nullable and col.name not in contract.key:
            out.append(("value_null", f"{q(col.name)} IS NULL AND {_empty(col)}", lit(f"{col.name} is empty")))
    for col in contract.columns:
        shown = f"CAST({raw(col.name)} AS VARCHAR)"
        if col.type == "period":
            cond = f"{q(col.name)} IS NOT NULL AND NOT regexp_full_match({q(col.name)}, {lit(PERIOD_PATTERN[1:-1])})"
        elif col.type in ("uscc", "text"):
            continue
        else:
            cond = f"{q(col.name)} IS NULL AND NOT {_empty(col)}"
        out.append(("type_invalid", cond, f"{lit(f'{col.name}=')} || {shown} || {lit(f' is not a valid {col.type}')}"))
    if contract.firm_column:
        f = q(contract.firm_column)
        shown = lit(f"{contract.firm_column}=")
        bad_code = f"{shown} || {f} || ' fails GB 32100-2015 (check character or format)'"
        if registry_join:
            out.append(("uscc_invalid", f"NOT _in_registry AND NOT uscc_valid({f})", bad_code))
            # last of all (below): a row named `firm_unknown` breaks no other rule, so a row whose firm
            # the registry may name on its next delivery is told from a broken one
            unknown = ("firm_unknown", "NOT _in_registry", f"{shown} || {f} || ' is not in the market registry'")
        else:
            out.append(("uscc_invalid", f"NOT uscc_valid({f})", bad_code))
    for col in contract.columns:  # another firm a row names (a receivable's core firm): a USCC too
        if col.type == "uscc" and col.name != contract.firm_column:
            v = q(col.name)
            out.append(("uscc_invalid", f"{v} IS NOT NULL AND NOT uscc_valid({v})",
                        f"{lit(f'{col.name}=')} || {v} || ' fails GB 32100-2015 (check character or format)'"))
    for col in contract.columns:
        v, shown = q(col.name), lit(f"{col.name}=")
        lo, hi = col.lower_bound, col.upper_bound
        if col.type == "money":
            out.append(("amount_negative", f"{v} < 0", f"{shown} || {v} || ' is negative'"))
        if lo is not None and not (col.type == "money" and lo == 0):
            out.append(("value_out_of_range", f"{v} < {float(lo)}", f"{shown} || {v} || {lit(f' is below {lo:g}')}"))
        if hi is not None:
            rule = "amount_absurd" if col.type == "money" else "value_out_of_range"
            out.append((rule, f"{v} > {float(hi)}", f"{shown} || {v} || {lit(f' is above {hi:g}')}"))
        if col.allowed:
            allowed = ", ".join(lit(a) for a in col.allowed)
            out.append(("value_not_allowed", f"{v} NOT IN ({allowed})",
                        f"{shown} || {v} || {lit(' is not one of ' + '/'.join(col.allowed))}"))
    for name in contract.not_after_delivery:
        col = contract.column(name)
        v, shown = q(name), lit(f"{name}=")
        if col.type == "period":
            out.append(("period_future", f"{v} > strftime(_delivered_on, '%Y-%m')",
                        f"{shown} || {v} || ' is after the delivery date ' || _delivered_on"))
        else:
            out.append(("date_future", f"{v} > _delivered_on",
                        f"{shown} || {v} || ' is after the delivery date ' || _delivered_on"))
    for earlier, later in contract.ordered:
        a, b = q(earlier), q(later)
        out.append(("date_order", f"{b} < {a}", f"{lit(f'{later}=')} || {b} || {lit(f' is before {earlier}=')} || {a}"))
    for one, other in contract.distinct:
        a, b = q(one), q(other)
        out.append(("self_reference", f"{a} = {b}", f"{lit(f'{other}=')} || {b} || {lit(f' is the {one} itself')}"))
    if contract.firm_column and registry_join:
        out.append(unknown)
    return out


def needs_registry(contract: Contract) -> bool:
    return contract.firm_column is not None and contract.source != "registry"


def checked_sql(contract: Contract, batch: SQL, files: SQL) -> SQL:
    """SELECT over `batch` (`_f` file index, `_row`, the columns as delivered) and `files` (`_f`,
    `delivered_on`): every row's typed columns with `_rule`, the first rule it breaks (NULL when good;
    duplicates are judged afterwards by `mark_duplicates`), and what its details need (`_ctrl`,
    `_in_registry`, `_stripped`; `_dup_versions` and `_dup_first_row` left NULL)."""
    reg = needs_registry(contract)
    strip = contract.control_characters == "strip"
    typed_cols = ", ".join(f"{typed_expr(c, strip).replace(raw(c.name), 'b.' + q(c.name))} AS {q(c.name)}"
                           for c in contract.columns)
    # text cells whose control characters were stripped, counted per row (in any other cell they fail the type)
    text = [c for c in contract.columns if c.type in TEXT_TYPES]
    stripped = ("CASE WHEN b._ctrl THEN " + " + ".join(f"CAST({has_control('b.' + q(c.name))} AS INTEGER)" for c in text)
                + " ELSE 0 END") if strip and text else "0"
    join, registered = "", "true"
    if reg:
        firm = typed_expr(contract.column(contract.firm_column)).replace(raw(contract.firm_column), "b." + q(contract.firm_column))
        join = f"LEFT JOIN (SELECT uscc AS _reg_uscc FROM staging.registry) _reg ON _reg._reg_uscc = {firm}"
        registered = "_reg._reg_uscc IS NOT NULL"
    case = "CASE " + " ".join(f"WHEN {cond} THEN '{rule}'" for rule, cond, _ in rules(contract, reg)) + " END"
    typed = ", ".join(q(c) for c in contract.column_names)
    return f"""
    WITH t AS (
        SELECT b._f, b._row, f.delivered_on AS _delivered_on, {raw_columns_sql(contract)}, {typed_cols}, {stripped} AS _stripped,
               b._ctrl, {registered} AS _in_registry
        FROM (SELECT *, {any_control([c.name for c in text])} AS _ctrl FROM {batch}) b
        JOIN {files} f USING (_f) {join}
    )
    SELECT _f, _row, _delivered_on, {typed}, _stripped, _ctrl, _in_registry, {case} AS _rule,
           NULL::BIGINT AS _dup_versions, NULL::BIGINT AS _dup_first_row
    FROM t"""


def repeated_keys(keys: SQL, rows: SQL) -> SQL:
    """SQL: the keys (`keys`, quoted and comma-separated) that more than one row of `rows` holds. The
    rows are grouped by the keys' hash first, a number, much faster to group than text; only the
    rows whose hash repeats are then grouped by the keys themselves."""
    return (f"SELECT {keys} FROM {rows} WHERE hash({keys}) IN (SELECT hash({keys}) FROM {rows} "
            f"GROUP BY hash({keys}) HAVING count(*) > 1) GROUP BY {keys} HAVING count(*) > 1")


def mark_duplicates(con, contract: Contract, checked: SQL) -> int:
    """Judge the good rows of the table `checked` that share a key with another in the same file:
    all of a key's rows when they differ (`duplicate_conflict`), the later copies when identical
    (`duplicate_exact`). Returns the rows marked."""
    keys = ", ".join(q(k) for k in contract.key)
    good_sql = f"(SELECT * FROM {checked} WHERE _rule IS NULL)"
    repeated_sql = repeated_keys(f"_f, {keys}", good_sql)
    if not con.execute(f"SELECT count(*) FROM ({repeated_sql})").fetchone()[0]:  # the common case: no key repeats
        return 0
    content = "hash(" + ", ".join(q(c) for c in contract.column_names) + ")"
    key_eq = " AND ".join(f"c.{q(k)} = d.{q(k)}" for k in contract.key)
    return int(con.execute(f"""
        UPDATE {checked} AS c SET
            _rule = CASE WHEN d._versions > 1 THEN 'duplicate_conflict' ELSE 'duplicate_exact' END,
            _dup_versions = d._versions, _dup_first_row = d._first_row
        FROM (SELECT _f, {keys}, count(DISTINCT {content}) AS _versions, min(_row) AS _first_row
              FROM {good_sql} SEMI JOIN ({repeated_sql}) USING (_f, {keys}) GROUP BY _f, {keys}) d
        WHERE c._rule IS NULL AND c._f = d._f AND {key_eq} AND (d._versions > 1 OR c._row > d._first_row)""").fetchone()[0])


def detail_sql(contract: Contract, checked: SQL, batch: SQL) -> SQL:
    """For the failed rows of `checked`: `_f`, `_row`, `_rule`, `_detail`, `_record` (JSON as
    delivered, read from `batch` by file and row)."""
    reg = needs_registry(contract)
    detail = "CASE " + " ".join(f"WHEN _rule = '{rule}' AND ({cond}) THEN {d}" for rule, cond, d in rules(contract, reg))
    keys = " || ', ' || ".join(f"CAST({q(k)} AS VARCHAR)" for k in contract.key)
    detail += (f" WHEN _rule = 'duplicate_conflict' THEN 'key (' || {keys} || ') appears ' || _dup_versions || "
               f"' different ways in the file' WHEN _rule = 'duplicate_exact' THEN 'key (' || {keys} || "
               f"') repeated; the copy at row ' || _dup_first_row || ' is kept' END")
    record = "to_json({" + ", ".join(f"{lit(c)}: CAST({raw(c)} AS VARCHAR)" for c in contract.column_names) + "})"
    return f"""SELECT _f, _row, _rule, {detail} AS _detail, {record} AS _record
               FROM (SELECT * FROM {checked} WHERE _rule IS NOT NULL) c
               JOIN (SELECT _f, _row, {raw_columns_sql(contract)} FROM {batch} b) USING (_f, _row)"""

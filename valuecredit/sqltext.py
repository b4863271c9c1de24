"""The only two ways text from outside SQL may enter a SQL statement.

Values (paths, names, dates, ids) are bound parameters wherever DuckDB accepts one
(`con.execute(sql, [params])`, `read_csv(?)`, `WHERE x = ?`). What cannot be bound goes through here:
identifiers through `q()`, and the few values DuckDB refuses to bind (a view's definition, the path of
`COPY ... TO`, the `columns` struct of `read_csv`) through `lit()`. tests/core/test_sql_text.py fails on
any other value interpolated into SQL text.
"""

from __future__ import annotations

import re
from typing import NewType


def q(name: str) -> str:
    """A quoted SQL identifier: any name, however spelt, stays one identifier."""
    return '"' + str(name).replace('"', '""') + '"'


def lit(value: object) -> str:
    """A quoted SQL string literal: any text, however spelt, stays one string."""
    text = str(value)
    if "\x00" in text:  # DuckDB ends a string at NUL: refuse rather than cut
        raise ValueError(f"a SQL string literal cannot hold a NUL character: {text!r}")
    return "'" + text.replace("'", "''") + "'"


# SQL text built only from safe parts: a function returning it (`-> SQL`) is a fragment builder and a
# parameter typed so takes a fragment. tests/core/test_sql_text.py checks every builder's f-strings and
# returns, and every argument passed to such a parameter.
SQL = NewType("SQL", str)


def message_lines(message: str) -> list[str]:
    """A DuckDB error's lines without the `LINE n:` and caret lines that point into the SQL text."""
    return [line.strip() for line in message.splitlines()
            if line.strip() and not re.match(r"\s*(LINE \d+:|\^+\s*$)", line)]


# the types DESCRIBE names, as it spells them; DECIMAL with its width and scale
_BASE_TYPES = frozenset({
    "BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
    "UHUGEINT", "FLOAT", "DOUBLE", "VARCHAR", "BLOB", "DATE", "TIME", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS",
    "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE", "TIME WITH TIME ZONE", "INTERVAL", "UUID", "BIT", "JSON", "VARINT",
    "BIGNUM"})
_DECIMAL = re.compile(r"DECIMAL\([0-9]{1,2},[0-9]{1,2}\)")
_ARRAY = re.compile(r"(.+)\[[0-9]*\]")
_FIELD = re.compile(r'("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*) (.+)')


def _top_level(text: str) -> list[str] | None:
    """`text` split at the commas outside parentheses and quotes; None when they do not balance."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, c in enumerate(text):
        if c == '"':
            quoted = not quoted
        elif not quoted:
            depth += {"(": 1, ")": -1}.get(c, 0)
            if depth < 0:
                return None
            if c == "," and depth == 0:
                parts.append(text[start:i].strip())
                start = i + 1
    return None if depth or quoted else [*parts, text[start:].strip()]


def _is_type(text: str) -> bool:
    if array := _ARRAY.fullmatch(text):
        return _is_type(array.group(1))
    for nested in ("STRUCT", "MAP"):
        if text.startswith(nested + "(") and text.endswith(")"):
            parts = _top_level(text[len(nested) + 1:-1])
            if parts is None:
                return False
            if nested == "MAP":
                return len(parts) == 2 and all(_is_type(p) for p in parts)
            fields = [_FIELD.fullmatch(p) for p in parts]
            return all(f and _is_type(f.group(2)) for f in fields)
    return text in _BASE_TYPES or bool(_DECIMAL.fullmatch(text))


def type_name(text: str) -> str:
    """A DuckDB column type as DESCRIBE spells it (`DOUBLE`, `DECIMAL(38,6)`, `VARCHAR[]`,
    `STRUCT(a DATE, "b c" VARCHAR)[]`, `MAP(VARCHAR, INTEGER)`), refused when it is anything else (an
    expression, an ENUM or UNION, which no table here holds): a type cannot be quoted or bound."""
    if not _is_type(text):
        raise ValueError(f"not a column type: {text!r}")
    return text

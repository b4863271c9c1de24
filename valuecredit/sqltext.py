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


_TYPE_NAME = re.compile(r"[A-Z][A-Z0-9_ ]*(\(\d+(, ?\d+)*\))?")
_FIELD = re.compile(r"([a-z_][a-z0-9_]*) (.+)")


def _top_level(text: str) -> list[str]:
    """`text` split at the commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if c == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [*parts, text[start:].strip()]


def _is_type(text: str) -> bool:
    while text.endswith("[]"):
        text = text[:-2]
    if text.startswith("STRUCT(") and text.endswith(")"):  # fields named as plain lower-case identifiers
        fields = [_FIELD.fullmatch(f) for f in _top_level(text[len("STRUCT("):-1])]
        return all(f and _is_type(f.group(2)) for f in fields)
    return bool(_TYPE_NAME.fullmatch(text))


def type_name(text: str) -> str:
    """A DuckDB column type as DESCRIBE spells it (`DOUBLE`, `DECIMAL(38,6)`, `VARCHAR[]`, a
    `STRUCT(a DATE, b VARCHAR)[]` of plainly named fields), refused when it is anything else: a type
    cannot be quoted or bound."""
    if not _is_type(text):
        raise ValueError(f"not a column type: {text!r}")
    return text

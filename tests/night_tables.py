"""A night's tables, and the comparison of an incremental night with a full one (shared by the tests)."""

from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

TABLES = ["meta.snapshots", "features.indicators", "scores.negative_hits", "scores.commercial_value", "scores.peer_groups",
          "features.pd_inputs", "scores.pd", "scores.explanations", "scores.pd_importance",
          "scores.pd_stability", "decisions.eligibility_firms", "decisions.eligibility_pairs"]


def tables(db: Path, as_of: date, names: list[str] = TABLES) -> dict[str, pd.DataFrame]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} WHERE as_of = ? ORDER BY ALL", [as_of]).df() for t in names}
    finally:
        con.close()


def assert_same_tables(db: Path, reference: Path, as_of: date, names: list[str] = TABLES) -> None:
    """Every table's rows for the date, in `db` and in `reference`, are the same, value for value (and not empty)."""
    mine, theirs = tables(db, as_of, names), tables(reference, as_of, names)
    for table in names:
        assert len(mine[table]) > 0, f"{table}: no rows for {as_of}"
        pd.testing.assert_frame_equal(mine[table], theirs[table], check_exact=True, obj=f"{table} on {as_of}")


def update_night(con: duckdb.DuckDBPyConnection, table: str, as_of: date, assignments: str, where: str = "true",
                 params: list | tuple = ()) -> None:
    """Tamper with a night of a table kept by validity range (`valuecredit.ranges`): `UPDATE ... SET
    assignments WHERE where` on the ranges that cover `as_of` (`where` cannot name `as_of`, which the
    ranges do not hold; every night such a range spans changes with it)."""
    from valuecredit.ranges import ranges_of

    con.execute(f"UPDATE {ranges_of(table)} SET {assignments} WHERE ({where}) AND valid_from <= ? AND ? < valid_to",
                [*params, as_of, as_of])

"""Checks on a date's scores: what must hold before anyone lends on them."""

from __future__ import annotations

from datetime import date

import duckdb

from scoring.catalogue import Catalogue
from scoring.score import missing_sql
from valuecredit.checks import CheckOutcome
from valuecredit.sqltext import q


def check_scores(con: duckdb.DuckDBPyConnection, as_of: date, cat: Catalogue) -> list[tuple[str, CheckOutcome]]:
    """(check name, outcome) for score ranges, one row per firm, hits behind every exclusion,
    and indicator missing rates within the catalogue's limit."""
    out = []
    dims = [q(d.key) for d in cat.dimensions]
    bad_range = con.execute(f"""
        SELECT count(*) FROM scores.commercial_value WHERE as_of = ? AND NOT (
            total BETWEEN 0 AND 1000 AND grade IS NOT NULL AND {" AND ".join(f"{d} BETWEEN 0 AND 100" for d in dims)})""",
                            [as_of]).fetchone()[0]
    lo, hi = con.execute("SELECT min(total), max(total) FROM scores.commercial_value WHERE as_of = ?", [as_of]).fetchone()
    out.append(("score_ranges", CheckOutcome(
        bad_range == 0, f"{bad_range} scores outside 0-1000 (dimensions outside 0-100, or no grade)",
        {"out_of_range": bad_range, "min_total": lo, "max_total": hi})))

    rows, firms, expected = con.execute("""
        SELECT (SELECT count(*) FROM scores.commercial_value WHERE as_of = $1),
               (SELECT count(DISTINCT uscc) FROM scores.commercial_value WHERE as_of = $1),
               (SELECT count(*) FROM features.indicators WHERE as_of = $1)""", [as_of]).fetchone()
    out.append(("one_row_per_firm", CheckOutcome(
        rows == firms == expected and rows > 0,
        f"{rows} score rows for {firms} firms; {expected} firms have indicators", {"rows": rows, "firms": firms})))

    unexplained, unapplied = con.execute("""
        SELECT count(*) FILTER (excluded AND h.uscc IS NULL), count(*) FILTER (NOT excluded AND h.uscc IS NOT NULL)
        FROM (SELECT * FROM scores.commercial_value WHERE as_of = $1) s
        LEFT JOIN (SELECT DISTINCT uscc FROM scores.negative_hits WHERE as_of = $1) h USING (uscc)""",
                                         [as_of]).fetchone()
    out.append(("exclusions_have_hits", CheckOutcome(
        unexplained == 0 and unapplied == 0,
        f"{unexplained} excluded firms without a recorded hit; {unapplied} firms with a hit not excluded",
        {"excluded_without_hit": unexplained, "hit_not_excluded": unapplied})))

    rates = con.execute("SELECT " + ", ".join(
        f"avg(CASE WHEN {missing_sql(i)} THEN 1.0 ELSE 0.0 END) AS {q(i.key)}" for i in cat.indicators)
        + " FROM features.indicators WHERE as_of = ?", [as_of]).df().iloc[0].to_dict()
    over = {k: round(v, 4) for k, v in rates.items() if v is not None and v > cat.max_missing_rate}
    out.append(("indicator_missing_rates", CheckOutcome(
        not over, f"indicators missing for more than {cat.max_missing_rate:.0%} of firms: {over or 'none'}",
        {"missing_rates": {k: round(float(v or 0), 4) for k, v in rates.items()}})))
    return out

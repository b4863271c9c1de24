"""The population target: a court listing within the window is a default; a firm that leaves the
register within the window without one is censored, not a survivor; a firm off the register is
no target after it left, by the first day any delivery showed it gone."""

from datetime import date

import duckdb

from models.population import court_default_sql, create_targets

AS_OF = date(2025, 3, 1)
FIRMS = {  # the registry's versions, oldest first: (status, status date); then the court's listing
    "listed": ([("存续", None)], date(2025, 9, 1)),
    "revoked_unlisted": ([("存续", None), ("吊销", date(2025, 11, 30))], None),
    "cancelled_unlisted": ([("注销", date(2026, 2, 27))], None),
    "moved_out_unlisted": ([("迁出", date(2025, 7, 31))], None),
    "cancelled_after_window": ([("注销", date(2026, 3, 1))], None),
    "listed_then_revoked": ([("吊销", date(2025, 12, 31))], date(2025, 6, 1)),
    "listed_after_window": ([("存续", None)], date(2026, 3, 1)),
    "revoked_in_window_cancelled_after": ([("吊销", date(2025, 11, 30)), ("注销", date(2026, 5, 31))], None),
    "revocation_rescinded": ([("吊销", date(2025, 6, 30)), ("存续", None)], None),
    "revoked_before_cancelled_in": ([("吊销", date(2025, 1, 31)), ("注销", date(2025, 6, 30))], None),
}


def store() -> duckdb.DuckDBPyConnection:
    """raw.registry holds every version, staging.registry the current one (as the store keeps them)."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw; CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.dishonest_debtors (uscc VARCHAR, listed_on DATE)")
    con.execute("CREATE TABLE raw.registry (uscc VARCHAR, founded_on DATE, status VARCHAR, status_date DATE, "
                "_superseded_on DATE)")
    con.execute("CREATE VIEW staging.registry AS SELECT * FROM raw.registry WHERE _superseded_on IS NULL")
    for uscc, (versions, listed_on) in FIRMS.items():
        for i, (status, status_date) in enumerate(versions):
            superseded = date(2026, 9, 1) if i < len(versions) - 1 else None
            con.execute("INSERT INTO raw.registry VALUES (?, '2010-01-01', ?, ?, ?)", [uscc, status, status_date, superseded])
        if listed_on:
            con.execute("INSERT INTO staging.dishonest_debtors VALUES (?, ?)", [uscc, listed_on])
    return con


def test_a_firm_that_leaves_the_register_within_its_window_unlisted_is_censored_not_a_survivor():
    con = store()
    con.execute("CREATE TABLE t AS SELECT uscc, ?::DATE AS as_of FROM staging.registry", [AS_OF])
    got = {u: (d, c) for u, _, d, c in con.execute(f"SELECT * FROM ({court_default_sql('t')})").fetchall()}
    # gone before the window (no target: the next test) is not censored in it
    censored = {"revoked_unlisted", "cancelled_unlisted", "moved_out_unlisted", "revoked_in_window_cancelled_after"}
    assert got == {u: (u.startswith("listed") and u != "listed_after_window", u in censored) for u in FIRMS}


def test_a_firm_off_the_register_is_no_target_from_the_day_a_delivery_first_showed_it_gone():
    con = store()
    assert create_targets(con, [AS_OF]) == len(FIRMS) - 1
    targets = {u for (u,) in con.execute("SELECT uscc FROM _pop_targets").fetchall()}
    assert targets == set(FIRMS) - {"revoked_before_cancelled_in"}  # revoked in January, cancelled in June

"""The population target: a court listing within the window is a default; a firm that leaves the
register within the window without one is censored, not a survivor."""

from datetime import date

import duckdb

from models.population import court_default_sql


def test_a_firm_that_exits_within_its_window_unlisted_is_censored_not_a_survivor():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("CREATE TABLE staging.dishonest_debtors (uscc VARCHAR, listed_on DATE)")
    con.execute("CREATE TABLE staging.registry (uscc VARCHAR, status VARCHAR, status_date DATE)")
    con.execute("CREATE TABLE t (uscc VARCHAR, as_of DATE)")
    as_of = date(2025, 3, 1)
    firms = {  # (registry status, status date, court listing)
        "listed": ("存续", None, date(2025, 9, 1)),
        "revoked_unlisted": ("吊销", date(2025, 11, 30), None),
        "cancelled_unlisted": ("注销", date(2026, 2, 27), None),
        "cancelled_after_window": ("注销", date(2026, 3, 1), None),
        "listed_then_revoked": ("吊销", date(2025, 12, 31), date(2025, 6, 1)),
        "listed_after_window": ("存续", None, date(2026, 3, 1)),
        "not_in_registry": (None, None, None),
    }
    for uscc, (status, status_date, listed_on) in firms.items():
        con.execute("INSERT INTO t VALUES (?, ?)", [uscc, as_of])
        if status:
            con.execute("INSERT INTO staging.registry VALUES (?, ?, ?)", [uscc, status, status_date])
        if listed_on:
            con.execute("INSERT INTO staging.dishonest_debtors VALUES (?, ?)", [uscc, listed_on])
    got = {u: (d, c) for u, _, d, c in con.execute(f"SELECT * FROM ({court_default_sql('t')}) ORDER BY uscc").fetchall()}
    assert got == {"listed": (True, False), "revoked_unlisted": (False, True), "cancelled_unlisted": (False, True),
                   "cancelled_after_window": (False, False), "listed_then_revoked": (True, False),
                   "listed_after_window": (False, False), "not_in_registry": (False, False)}

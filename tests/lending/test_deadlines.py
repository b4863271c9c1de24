"""The 7-working-day decision deadline, across National Day 2026 and its 调休 Saturday."""

from datetime import date

import duckdb

from lending.calendar import WorkingDays
from lending.deadlines import build_deadlines


def test_deadline_counts_working_days_across_a_holiday_with_a_makeup_saturday():
    # applied Monday 28 September 2026: working days 29 and 30 September, then (1-7 October off) 8, 9,
    # Saturday 10 October (调休, worked), 12 and 13 October: the deadline is Tuesday 13 October,
    # one day earlier than with the Saturday off
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("""CREATE TABLE staging.loan_applications AS SELECT * FROM (VALUES
        ('A1', 'F1', 'B01', TIMESTAMP '2026-09-28', TIMESTAMP '2026-10-13', 'approved', DATE '2026-10-14'),
        ('A2', 'F2', 'B01', TIMESTAMP '2026-09-28', TIMESTAMP '2026-10-14', 'declined', DATE '2026-10-15'),
        ('A3', 'F3', 'B02', TIMESTAMP '2026-09-28', NULL, NULL, DATE '2026-10-01'),
        ('A4', 'F4', 'B02', TIMESTAMP '2026-10-09', NULL, NULL, DATE '2026-10-10'),
        ('A5', 'F5', 'B03', TIMESTAMP '2026-10-20', NULL, NULL, DATE '2026-10-25'))
        t(application_id, uscc, bank_id, applied_on, decided_on, decision, _delivered_on)""")
    s = build_deadlines(con, date(2026, 10, 16), WorkingDays.load())
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT application_id, deadline, status, days_past_deadline FROM decisions.application_deadlines").fetchall()}
    assert rows["A1"] == (date(2026, 10, 13), "on_time", None)
    assert rows["A2"] == (date(2026, 10, 13), "late", 1)
    assert rows["A3"] == (date(2026, 10, 13), "overdue", 3)  # still undecided three days after the deadline
    # applied Friday 9 October: 10 (Sat, worked), 12, 13, 14, 15, 16, 19 October
    assert rows["A4"] == (date(2026, 10, 19), "pending", None)
    assert "A5" not in rows and (s.applications, s.late, s.overdue) == (4, 1, 1)  # not yet delivered on 16 October


def test_a_night_before_any_application_is_delivered_has_no_deadlines_and_goes_on():
    """A programme's first nights, before any bank has delivered an application: no deadline, no error;
    the table keeps its types for the nights that follow."""
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging")
    con.execute("""CREATE TABLE staging.loan_applications AS SELECT * FROM (VALUES
        ('A1', 'F1', 'B01', TIMESTAMP '2026-09-28', TIMESTAMP '2026-10-13', 'approved', DATE '2026-10-14'))
        t(application_id, uscc, bank_id, applied_on, decided_on, decision, _delivered_on)""")
    assert build_deadlines(con, date(2026, 10, 1), WorkingDays.load()).applications == 0
    assert build_deadlines(con, date(2026, 10, 16), WorkingDays.load()).applications == 1
    assert con.execute("SELECT deadline, status FROM decisions.application_deadlines").fetchall() == \
        [(date(2026, 10, 13), "on_time")]

"""Decision deadlines: every application in the loan book must be decided within 7 working days
(Chinese calendar with 调休, `lending.calendar`); a table of applications with their deadline and
any breach, as known on the business date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from lending.calendar import WorkingDays
from valuecredit.sqltext import lit
from valuecredit.store import replace_date, transaction

DECISION_WORKING_DAYS = 7


@dataclass
class DeadlineSummary:
    as_of: date
    applications: int
    late: int
    overdue: int


def build_deadlines(con: duckdb.DuckDBPyConnection, as_of: date, calendar: WorkingDays) -> DeadlineSummary:
    """Replace the date's rows of decisions.application_deadlines in one transaction. Status:
    on_time, late (decided after the deadline), pending (undecided, deadline not passed) or overdue."""
    con.execute("CREATE SCHEMA IF NOT EXISTS decisions")
    applied = [r[0] for r in con.execute(
        "SELECT DISTINCT CAST(applied_on AS DATE) FROM staging.loan_applications WHERE _delivered_on <= ? ORDER BY 1",
        [as_of]).fetchall()]
    # the calendar is in Python (holidays and 调休 by year): one deadline per distinct application date
    # typed as dates even when there is no application yet (an empty frame's columns have no type)
    deadlines = pa.table({"applied_day": pa.array(applied, pa.date32()),
                          "deadline": pa.array([calendar.add_working_days(d, DECISION_WORKING_DAYS) for d in applied],
                                               pa.date32())})
    d = f"DATE {lit(as_of.isoformat())}"
    select = f"""
        SELECT a.application_id, a.uscc, a.bank_id, CAST(a.applied_on AS DATE) AS applied_on,
               CAST(a.decided_on AS DATE) AS decided_on, a.decision, dl.deadline, {d} AS as_of,
               CASE WHEN a.decided_on IS NOT NULL AND CAST(a.decided_on AS DATE) <= dl.deadline THEN 'on_time'
                    WHEN a.decided_on IS NOT NULL THEN 'late'
                    WHEN {d} <= dl.deadline THEN 'pending' ELSE 'overdue' END AS status,
               CASE WHEN a.decided_on IS NOT NULL AND CAST(a.decided_on AS DATE) > dl.deadline
                    THEN CAST(a.decided_on AS DATE) - dl.deadline
                    WHEN a.decided_on IS NULL AND {d} > dl.deadline THEN {d} - dl.deadline END AS days_past_deadline
        FROM staging.loan_applications a JOIN _deadlines dl ON dl.applied_day = CAST(a.applied_on AS DATE)
        WHERE a._delivered_on <= {d}
        ORDER BY a.application_id"""
    con.register("_deadlines", deadlines)
    try:
        with transaction(con):
            replace_date(con, "decisions.application_deadlines", as_of, select, create=True)
    finally:
        con.unregister("_deadlines")
    n, late, overdue = con.execute("""SELECT count(*), count(*) FILTER (status = 'late'), count(*) FILTER (status = 'overdue')
                                      FROM decisions.application_deadlines WHERE as_of = ?""", [as_of]).fetchone()
    return DeadlineSummary(as_of, n, late, overdue)

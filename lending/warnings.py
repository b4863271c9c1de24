"""Early warnings for firms with outstanding programme loans, per lending bank.

Signals on the business date (`signals_sql`), each with a severity and its evidence:
- revenue, insured headcount or electricity use down: each of the last three months delivered below
  80 % of the average of the six months before (a sustained drop, not one bad month);
- new arrears: social-insurance arrears in the latest month and none the month before;
- a new negative-list hit: evidence dated within the last 31 days;
- a PD jump: today's PD at least 1.5 times, and 2 points above, the PD of the latest scoring at
  least 28 days earlier.
Lifecycle (`update_warnings`): a signal not already open is raised once; an open warning still
signalled is updated (evidence, severity, updated_on); an open warning no longer signalled is closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from scoring.sql import PointInTime
from valuecredit.schema import ensure
from valuecredit.sqltext import SQL, lit, q
from valuecredit.store import transaction

DROP_RATIO, JUMP_RATIO, JUMP_POINTS = 0.8, 1.5, 0.02



def _drop(source: str, column: str, kind: str, pit: PointInTime) -> SQL:
    return f"""
        SELECT uscc, {lit(kind)} AS kind, 'medium' AS severity,
               {lit(column + ': last 3 months ')} || array_to_string(list(CAST(round(v) AS BIGINT) ORDER BY k DESC)
                   FILTER (k <= 2), ', ') || ' (to ' || max(period) || ') against a 6-month average of '
                   || CAST(round(avg(v) FILTER (k BETWEEN 3 AND 8)) AS BIGINT) AS evidence
        FROM (SELECT uscc, period, k, CAST({q(column)} AS DOUBLE) AS v FROM {pit.windowed(source)} WHERE k <= 8)
        GROUP BY uscc
        HAVING count(*) FILTER (k BETWEEN 3 AND 8) = 6 AND count(*) FILTER (k <= 2) = 3
           AND max(v) FILTER (k <= 2) < {DROP_RATIO} * avg(v) FILTER (k BETWEEN 3 AND 8)"""


def signals_sql(as_of: date) -> str:
    """(uscc, bank_id, kind, severity, evidence) for every firm with an outstanding loan."""
    d = f"DATE {lit(as_of.isoformat())}"
    pit = PointInTime("_borrowers", None)  # only the borrowers' rows, as known on the date
    return f"""
    WITH firm_signals AS (
        {_drop("tax_monthly", "revenue_fen", "revenue_drop", pit)}
        UNION ALL {_drop("social_insurance", "insured_headcount", "headcount_drop", pit)}
        UNION ALL {_drop("power", "kwh", "power_drop", pit)}
        UNION ALL
        SELECT uscc, 'new_arrears', 'medium',
               'social-insurance arrears ' || any_value(arrears_months) FILTER (k = 0) || ' month(s) in ' || max(period)
        FROM {pit.windowed("social_insurance")} WHERE k <= 1 GROUP BY uscc
        HAVING any_value(arrears_months) FILTER (k = 0) > 0 AND coalesce(any_value(arrears_months) FILTER (k = 1), 0) = 0
        UNION ALL
        SELECT uscc, 'new_negative_hit', 'high', string_agg(rule_id || ' ' || rule || ' on ' || evidence_date, '; '
                                                             ORDER BY rule_id, evidence_date)
        FROM scores.negative_hits WHERE as_of = {d} AND evidence_date > {d} - INTERVAL 31 DAY GROUP BY uscc
        UNION ALL
        SELECT now.uscc, 'pd_jump', CASE WHEN now.pd >= 2 * before.pd THEN 'high' ELSE 'medium' END,
               'PD ' || round(before.pd, 4) || ' on ' || before.as_of || ' -> ' || round(now.pd, 4) || ' on ' || now.as_of
        FROM (SELECT uscc, as_of, pd FROM scores.pd WHERE as_of = {d}) now
        JOIN (SELECT uscc, as_of, pd FROM scores.pd WHERE as_of = (
                  SELECT max(as_of) FROM scores.pd WHERE as_of <= {d} - INTERVAL 28 DAY)) before USING (uscc)
        WHERE now.pd >= {JUMP_RATIO} * before.pd AND now.pd - before.pd >= {JUMP_POINTS})
    SELECT b.uscc, b.bank_id, s.kind, s.severity, s.evidence
    FROM (SELECT DISTINCT uscc, bank_id FROM _outstanding) b JOIN firm_signals s USING (uscc)
    ORDER BY b.uscc, b.bank_id, s.kind"""


@dataclass
class WarningSummary:
    as_of: date
    raised: int
    updated: int
    closed: int
    open: int


def update_warnings(con: duckdb.DuckDBPyConnection, as_of: date) -> WarningSummary:
    """Raise, update and close warnings for the date, in one transaction. Dates are processed in
    order: a date before the last one processed is refused (the lifecycle would run backwards)."""
    ensure(con, "decisions.early_warnings", "scores.pd")  # before the first PD model: no PD jumps
    last = con.execute("SELECT max(greatest(updated_on, coalesce(closed_on, updated_on))) FROM decisions.early_warnings"
                       ).fetchone()[0]
    if last is not None and as_of < last:
        raise ValueError(f"early warnings were last updated for {last}; {as_of} is earlier and would run the "
                         "lifecycle backwards")
    d = f"DATE {lit(as_of.isoformat())}"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _outstanding AS
        SELECT l.uscc, l.bank_id FROM staging.loans l JOIN ledger.loan_state s USING (loan_id)
        WHERE s.outstanding_fen > 0 AND l.disbursed_on <= {d}""")
    con.execute("CREATE OR REPLACE TEMP TABLE _borrowers AS SELECT DISTINCT uscc, " + d + " AS as_of FROM _outstanding")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _signals AS {signals_sql(as_of)}")
    try:
        with transaction(con):
            updated = con.execute(f"""
                UPDATE decisions.early_warnings w SET evidence = s.evidence, severity = s.severity, updated_on = {d}
                FROM _signals s WHERE w.status = 'open' AND w.uscc = s.uscc AND w.bank_id = s.bank_id AND w.kind = s.kind
                """).fetchone()[0]
            closed = con.execute(f"""
                UPDATE decisions.early_warnings w SET status = 'closed', closed_on = {d}, updated_on = {d}
                WHERE w.status = 'open' AND NOT EXISTS (
                    SELECT 1 FROM _signals s WHERE s.uscc = w.uscc AND s.bank_id = w.bank_id AND s.kind = w.kind)""").fetchone()[0]
            raised = con.execute(f"""
                INSERT INTO decisions.early_warnings
                -- the id: firm, bank, kind and the day it was raised, hashed
                SELECT substr(sha256(s.uscc || '|' || s.bank_id || '|' || s.kind || '|' || CAST({d} AS VARCHAR)), 1, 20),
                       s.uscc, s.bank_id, s.kind, s.severity, s.evidence,
                       'open', {d}, {d}, NULL
                FROM _signals s WHERE NOT EXISTS (
                    SELECT 1 FROM decisions.early_warnings w
                    WHERE w.status = 'open' AND w.uscc = s.uscc AND w.bank_id = s.bank_id AND w.kind = s.kind)
                ORDER BY s.uscc, s.bank_id, s.kind""").fetchone()[0]
    finally:
        for t in ("_signals", "_borrowers", "_outstanding"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
    n_open = con.execute("SELECT count(*) FROM decisions.early_warnings WHERE status = 'open'").fetchone()[0]
    return WarningSummary(as_of, raised, updated, closed, n_open)

"""Early warnings: raised once, updated while the signal lasts, closed once; the signals themselves
on a simulated loan book."""

import hashlib
from datetime import date

import duckdb
import pytest

import lending.warnings as early
from lending.warnings import update_warnings


def test_a_warning_is_raised_once_updated_and_closed_once(monkeypatch):
    con = duckdb.connect()
    con.execute("CREATE SCHEMA staging; CREATE SCHEMA ledger")
    con.execute("CREATE TABLE staging.loans AS SELECT 'L1' AS loan_id, 'F1' AS uscc, 'B01' AS bank_id, "
                "DATE '2026-01-05' AS disbursed_on")
    con.execute("CREATE TABLE ledger.loan_state AS SELECT 'L1' AS loan_id, 100 AS outstanding_fen")
    signalled = {  # the signals of each date: the drop lasts three nights, then the firm recovers
        date(2026, 11, 1): [("revenue_drop", "medium", "revenue down 30%")],
        date(2026, 11, 2): [("revenue_drop", "high", "revenue down 45%"), ("new_arrears", "medium", "1 month")],
        date(2026, 11, 3): [("revenue_drop", "high", "revenue down 50%")],
        date(2026, 11, 4): [],
    }

    def fake(as_of):
        rows = signalled[as_of] or [("none", "", "")]
        values = ", ".join(f"('F1', 'B01', '{k}', '{s}', '{e}')" for k, s, e in rows)
        return f"SELECT * FROM (VALUES {values}) t(uscc, bank_id, kind, severity, evidence) WHERE kind <> 'none'"

    monkeypatch.setattr(early, "signals_sql", fake)
    summaries = [update_warnings(con, d) for d in signalled]
    assert update_warnings(con, date(2026, 11, 4)).raised == 0  # a re-run of the night raises nothing new
    assert [(s.raised, s.updated, s.closed, s.open) for s in summaries] == [
        (1, 0, 0, 1), (1, 1, 0, 2), (0, 1, 1, 1), (0, 0, 1, 0)]
    rows = con.execute("""SELECT kind, severity, evidence, status, raised_on, updated_on, closed_on
                          FROM decisions.early_warnings ORDER BY kind""").fetchall()
    assert rows == [
        ("new_arrears", "medium", "1 month", "closed", date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 3)),
        ("revenue_drop", "high", "revenue down 50%", "closed", date(2026, 11, 1), date(2026, 11, 4), date(2026, 11, 4)),
    ]
    ids = dict(con.execute("SELECT kind, warning_id FROM decisions.early_warnings").fetchall())
    assert ids["revenue_drop"] == hashlib.sha256(b"F1|B01|revenue_drop|2026-11-01").hexdigest()[:20]
    with pytest.raises(ValueError, match="backwards"):
        update_warnings(con, date(2026, 11, 2))


def test_signals_on_a_simulated_loan_book(loan_book, tmp_path):
    import shutil

    from lending.calendar import WorkingDays
    from lending.ledger.config import load_pool_config
    from lending.ledger.store import post_business_date
    from scoring.catalogue import load_catalogue
    from scoring.score import build_indicators, build_scores
    from valuecredit.store import connect

    con0, _, store = loan_book
    con0.execute("CHECKPOINT")
    shutil.copy(store, tmp_path / "w.duckdb")
    con = connect(tmp_path / "w.duckdb")
    as_of = date(2026, 11, 28)
    post_business_date(con, as_of, load_pool_config(), WorkingDays.load())
    build_indicators(con, as_of)
    build_scores(con, as_of, load_catalogue())
    s = update_warnings(con, as_of)
    kinds = dict(con.execute("SELECT kind, count(*) FROM decisions.early_warnings GROUP BY kind").fetchall())
    assert s.raised == s.open == sum(kinds.values()) > 0 and {"new_arrears", "new_negative_hit", "power_drop"} <= set(kinds)
    # every warned firm has an outstanding loan with the bank it is sent to
    stray = con.execute("""SELECT count(*) FROM decisions.early_warnings w WHERE NOT EXISTS (
        SELECT 1 FROM staging.loans l JOIN ledger.loan_state s USING (loan_id)
        WHERE l.uscc = w.uscc AND l.bank_id = w.bank_id AND s.outstanding_fen > 0)""").fetchone()[0]
    assert stray == 0
    # a sustained drop: each of the last three months below 80 % of the six before, as the evidence shows
    for (evidence,) in con.execute("SELECT evidence FROM decisions.early_warnings WHERE kind LIKE '%_drop'").fetchall():
        last3, average = evidence.split("last 3 months ")[1].split(" (to ")[0], int(evidence.rsplit(" ", 1)[1])
        assert all(int(v) < 0.8 * average for v in last3.split(", ")), evidence

"""The ledger in DuckDB: events from the loan book, one business date posted per transaction.

A nightly run posts the events the platform learned since the last posted business date (the
files delivered in that window), in effective-date order. Everything a date writes (legs, claim
decisions, the events applied, loan states, the run) goes in one transaction: a failure anywhere,
between two legs included, leaves nothing of that date behind. Re-posting a date derives the same
events from the same window; they are all duplicates, so it adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import pandas as pd

from valuecredit.calendar import WorkingDays
from valuecredit.ledger.config import PoolConfig
from valuecredit.ledger.engine import (
    NORMAL_SIDE,
    ClaimDecision,
    Event,
    LedgerError,
    LoanState,
    Pool,
    Posting,
    posting_id,
)

DDL = [
    "CREATE SCHEMA IF NOT EXISTS ledger",
    """CREATE TABLE IF NOT EXISTS ledger.accounts (account VARCHAR PRIMARY KEY, bank_id VARCHAR, kind VARCHAR,
       normal_side VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS ledger.postings (seq BIGINT, posting_id VARCHAR, leg INTEGER, account VARCHAR, bank_id VARCHAR,
       loan_id VARCHAR, event_type VARCHAR, effective_date DATE, business_date DATE, debit_fen BIGINT,
       credit_fen BIGINT, memo VARCHAR, pool_config_version INTEGER, PRIMARY KEY (posting_id, leg))""",
    """CREATE TABLE IF NOT EXISTS ledger.events (event_id VARCHAR PRIMARY KEY, event_type VARCHAR, bank_id VARCHAR,
       loan_id VARCHAR, event_key VARCHAR, effective_date DATE, business_date DATE, amount_fen BIGINT)""",
    """CREATE TABLE IF NOT EXISTS ledger.claims (loan_id VARCHAR, bank_id VARCHAR, npl_on DATE, deadline DATE,
       claimed_on DATE, status VARCHAR, unrecovered_fen BIGINT, claimed_fen BIGINT, paid_fen BIGINT,
       posting_id VARCHAR, business_date DATE)""",
    """CREATE TABLE IF NOT EXISTS ledger.loan_state (loan_id VARCHAR PRIMARY KEY, bank_id VARCHAR,
       disbursed_year INTEGER, disbursed_fen BIGINT, outstanding_fen BIGINT, recovered_or_repaid_fen BIGINT,
       written_off_fen BIGINT, npl_on DATE, claim_deadline DATE, claimed BOOLEAN, paid_fen BIGINT, returned_fen BIGINT)""",
    """CREATE TABLE IF NOT EXISTS ledger.runs (business_date DATE PRIMARY KEY, window_from DATE, events BIGINT,
       postings BIGINT, pool_config_version INTEGER, pool_config_hash VARCHAR)""",
]
NPL_CLASSES = ("次级", "可疑", "损失")


@dataclass
class PostingSummary:
    business_date: date
    events: int
    duplicates: int
    postings: int
    claims: dict[str, int]


def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in DDL:
        con.execute(stmt)


def events_between(con: duckdb.DuckDBPyConnection, after: date | None, upto: date, cfg: PoolConfig) -> list[Event]:
    """The loan book's events delivered in (after, upto], from the raw (versioned) tables."""
    lo = after or date(1900, 1, 1)
    args = {"lo": lo, "hi": upto}

    def window(alias: str) -> str:
        return f"{alias}._delivered_on > $lo AND {alias}._delivered_on <= $hi"

    rows: list[tuple] = []
    rows += con.execute(f"""SELECT 'disbursement', disbursed_on, _delivered_on, bank_id, loan_id, amount_fen, 'disbursed'
                            FROM raw.loans l WHERE {window('l')}""", args).fetchall()
    status = f"""SELECT s.*, l.bank_id, last_day(CAST(s.period || '-01' AS DATE)) AS period_end FROM raw.loan_status s
                 JOIN (SELECT DISTINCT loan_id, bank_id FROM raw.loans) l USING (loan_id) WHERE {window('s')}"""
    rows += con.execute(f"""SELECT 'repayment', period_end, _delivered_on, bank_id, loan_id, principal_repaid_fen, period
                            FROM ({status}) WHERE principal_repaid_fen > 0""", args).fetchall()
    rows += con.execute(f"""SELECT 'non_performing', period_end, _delivered_on, bank_id, loan_id, 0, 'npl'
                            FROM ({status}) WHERE classification IN {NPL_CLASSES}""", args).fetchall()
    if cfg.auto_claim:  # lodged the day the platform learns of it
        rows += con.execute(f"""SELECT 'claim', _delivered_on, _delivered_on, bank_id, loan_id, 0, 'claim'
                                FROM ({status}) WHERE classification IN {NPL_CLASSES}""", args).fetchall()
    if cfg.subsidy_enabled:  # on the principal outstanding at the start of the month, for months with interest paid
        rows += con.execute(f"""SELECT 'interest_subsidy', period_end, _delivered_on, bank_id, loan_id,
                                       ((outstanding_fen + principal_repaid_fen) * {cfg.subsidy_rate_bp} + 60000) // 120000, period
                                FROM ({status}) WHERE interest_paid_fen > 0""", args).fetchall()
    rows += con.execute(f"""SELECT r.event_type, r.event_date, r._delivered_on, l.bank_id, r.loan_id, r.amount_fen, r.event_id
                            FROM raw.loan_recoveries r JOIN (SELECT DISTINCT loan_id, bank_id FROM raw.loans) l USING (loan_id)
                            WHERE {window('r')}""", args).fetchall()
    if cfg.rewards_enabled:
        month, day = cfg.rewards_posted_on
        banks = [b for (b,) in con.execute("SELECT DISTINCT bank_id FROM raw.loans ORDER BY 1").fetchall()]
        for year in range(lo.year - 1, upto.year):
            on = date(year + 1, month, day)
            if lo < on <= upto:
                rows += [("reward", on, on, b, "", 0, str(year)) for b in banks]
    events = [Event(t, eff, known, bank, loan or "", int(amt or 0), str(key)) for t, eff, known, bank, loan, amt, key in rows]
    # same-day duplicates of one event (a status row delivered twice) collapse to one
    return sorted(set(events), key=lambda e: (e.sort_key, e.business_date, e.amount_fen))


def load_pool(con: duckdb.DuckDBPyConnection, cfg: PoolConfig, calendar: WorkingDays) -> Pool:
    """The pool as the ledger left it: balances from the legs, loan states, every event applied."""
    pool = Pool(cfg, calendar)
    pool.balances = {a: int(b) for a, b in con.execute(
        "SELECT account, sum(debit_fen) - sum(credit_fen) FROM ledger.postings GROUP BY account").fetchall()}
    for r in con.execute("SELECT * FROM ledger.loan_state").fetchall():
        pool.loans[r[0]] = LoanState(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11])
        year = (r[1], r[2])
        pool.lending_by_year[year] = pool.lending_by_year.get(year, 0) + r[3]
        if r[7] is not None:
            pool.npl_by_year[year] = pool.npl_by_year.get(year, 0) + r[3]
    pool.seen = dict(con.execute("SELECT event_id, amount_fen FROM ledger.events").fetchall())
    return pool


def post_business_date(con: duckdb.DuckDBPyConnection, business_date: date, cfg: PoolConfig,
                       calendar: WorkingDays) -> PostingSummary:
    """Post the events learned since the last posted date, up to `business_date`, in one transaction."""
    ensure_ledger(con)
    latest = con.execute("SELECT max(business_date) FROM ledger.runs").fetchone()[0]
    done = con.execute("SELECT window_from FROM ledger.runs WHERE business_date = ?", [business_date]).fetchone()
    if done is None and latest is not None and business_date < latest:
        raise LedgerError(f"the ledger is posted through {latest}; {business_date} was never posted and cannot be "
                          "inserted behind it (rebuild the ledger to replay history)")
    after = done[0] if done else latest
    events = events_between(con, after, business_date, cfg)
    pool = load_pool(con, cfg, calendar)
    postings: list[Posting] = []
    claims: list[ClaimDecision] = []
    new_events: list[Event] = []
    for ev in events:
        applied = pool.apply(ev)
        if applied.duplicate:
            continue
        new_events.append(ev)
        if applied.posting:
            postings.append(applied.posting)
        if applied.claim:
            claims.append(applied.claim)
    con.execute("BEGIN TRANSACTION")
    try:
        write_postings(con, postings, cfg)
        _write_rest(con, business_date, after, new_events, claims, pool, {p.loan_id for p in postings} |
                    {e.loan_id for e in new_events if e.loan_id}, cfg, len(postings))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    counts: dict[str, int] = {}
    for c in claims:
        counts[c.status] = counts.get(c.status, 0) + 1
    return PostingSummary(business_date, len(new_events), len(events) - len(new_events), len(postings), counts)


def write_postings(con: duckdb.DuckDBPyConnection, postings: list[Posting], cfg: PoolConfig) -> None:
    """Insert every leg of every posting, numbered in the order posted; the caller's transaction
    makes them all-or-nothing."""
    start = con.execute("SELECT coalesce(max(seq), 0) FROM ledger.postings").fetchall()[0][0]
    rows = [(start + i, p.posting_id, n, leg.account, p.bank_id, p.loan_id, p.event_type, p.effective_date, p.business_date,
             leg.debit_fen, leg.credit_fen, p.memo, cfg.version)
            for i, p in enumerate(postings, start=1) for n, leg in enumerate(p.legs, start=1)]
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=["seq", "posting_id", "leg", "account", "bank_id", "loan_id", "event_type",
                                        "effective_date", "business_date", "debit_fen", "credit_fen", "memo",
                                        "pool_config_version"])
    con.register("_legs", frame)
    try:
        con.execute("INSERT INTO ledger.postings SELECT * FROM _legs ORDER BY seq, leg")
        accounts = sorted({r[3] for r in rows})
        con.executemany("INSERT OR IGNORE INTO ledger.accounts VALUES (?, ?, ?, ?)",
                        [(a, a.split(":", 1)[1], a.split(":", 1)[0], NORMAL_SIDE[a.split(":", 1)[0]]) for a in accounts])
    finally:
        con.unregister("_legs")


def _write_rest(con, business_date: date, after: date | None, events: list[Event], claims: list[ClaimDecision],
                pool: Pool, touched: set[str], cfg: PoolConfig, n_postings: int) -> None:
    if events:
        con.register("_events", pd.DataFrame(
            [(posting_id(e), e.type, e.bank_id, e.loan_id, e.key, e.effective_date, e.business_date, e.amount_fen)
             for e in events],
            columns=["event_id", "event_type", "bank_id", "loan_id", "event_key", "effective_date", "business_date",
                     "amount_fen"]))
        con.execute("INSERT INTO ledger.events SELECT * FROM _events ORDER BY event_id")
        con.unregister("_events")
    if claims:
        con.executemany("INSERT INTO ledger.claims VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [(c.loan_id, c.bank_id, c.npl_on, c.deadline, c.claimed_on, c.status, c.unrecovered_fen,
                          c.claimed_fen, c.paid_fen, c.posting_id, business_date) for c in claims])
    if touched:
        state = pd.DataFrame([(lid, s.bank_id, s.disbursed_year, s.disbursed_fen, s.outstanding_fen,
                               s.recovered_or_repaid_fen, s.written_off_fen, s.npl_on, s.claim_deadline, s.claimed,
                               s.paid_fen, s.returned_fen) for lid in sorted(touched) for s in [pool.loans[lid]]],
                             columns=["loan_id", "bank_id", "disbursed_year", "disbursed_fen", "outstanding_fen",
                                      "recovered_or_repaid_fen", "written_off_fen", "npl_on", "claim_deadline", "claimed",
                                      "paid_fen", "returned_fen"])
        con.register("_state", state)
        con.execute("DELETE FROM ledger.loan_state WHERE loan_id IN (SELECT loan_id FROM _state)")
        con.execute("INSERT INTO ledger.loan_state SELECT * FROM _state ORDER BY loan_id")
        con.unregister("_state")
    # a date posted again keeps its record; events that arrived late for it add to the counts
    con.execute("""INSERT INTO ledger.runs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (business_date) DO UPDATE
                   SET events = ledger.runs.events + excluded.events, postings = ledger.runs.postings + excluded.postings""",
                [business_date, after, len(events), n_postings, cfg.version, cfg.content_hash])


def rebuild(con: duckdb.DuckDBPyConnection, cfg: PoolConfig, calendar: WorkingDays) -> list[PostingSummary]:
    """Replay every posted business date from the loan book into an empty ledger, in order."""
    ensure_ledger(con)
    dates = [d for (d,) in con.execute("SELECT business_date FROM ledger.runs ORDER BY 1").fetchall()]
    con.execute("BEGIN TRANSACTION")
    try:
        for table in ("postings", "events", "claims", "loan_state", "runs", "accounts"):
            con.execute(f"DELETE FROM ledger.{table}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return [post_business_date(con, d, cfg, calendar) for d in dates]

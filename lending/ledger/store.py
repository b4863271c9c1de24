"""The ledger in DuckDB: events from the loan book, one business date posted per transaction.

A nightly run posts the events the platform learned since the last posted business date (the
files delivered in that window), in effective-date order. Everything a date writes (legs, claims and
their payouts, loans above the cap, the events applied, loan states, the run) goes in one
transaction: a failure anywhere, between two legs included, leaves nothing of that date behind.
Re-posting a date derives the same events from the same window; they are all duplicates, so it adds
nothing. A row delivered again with other amounts (a corrected loan, status or recovery) is a
correction: a reversal and a corrected posting, never an update.

Every row carries the business date of its event (the day the platform learned it), and every
statement figure counts on that date.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import date

import duckdb
import pyarrow as pa

from lending.calendar import WorkingDays
from lending.ledger.config import PoolConfig
from lending.ledger.engine import (
    EVENT_ORDER,
    NORMAL_SIDE,
    SERVICING_ACCOUNTS,
    Claim,
    Event,
    LedgerError,
    Leg,
    LoanState,
    OverCap,
    Payout,
    Pool,
    Posting,
)
from scoring.sql import within
from valuecredit.schema import LEDGER_TABLES, ensure
from valuecredit.sqltext import SQL, lit
from valuecredit.store import transaction

NPL_CLASSES = ("次级", "可疑", "损失")
# the monthly servicing postings (most of a night's events) are applied by `Pool.service` and their
# legs written in SQL; False sends them through the generic path (the tests compare the two)
SET_WISE_SERVICING = True


@dataclass
class PostingSummary:
    business_date: date
    events: int
    duplicates: int
    postings: int
    claims: dict[str, int]  # the claims lodged, by status after the night
    payouts: int = 0
    over_cap: int = 0       # loans put on the exception list




def ensure_ledger(con: duckdb.DuckDBPyConnection) -> None:
    present = {f"ledger.{t}" for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = ?",
                                                     ["ledger"]).fetchall()}
    if not present.issuperset(LEDGER_TABLES):  # the DDL only when a table is missing: it runs every night
        ensure(con, *LEDGER_TABLES)
    try:
        con.execute("SELECT claim_id FROM ledger.claims LIMIT 0")
    except duckdb.BinderException:
        raise LedgerError("the store's ledger tables predate the claims queue and the loan cap (ledger.claims has no "
                          "claim_id): run `valuecredit ledger rebuild` to replay the posted dates under the current "
                          "rules") from None


def events_between(con: duckdb.DuckDBPyConnection, after: date | None, upto: date,
                   cfg: PoolConfig) -> tuple[list[Event], list[str]]:
    """The loan book's events delivered in (after, upto], from the raw (versioned) tables, in the
    order they are applied, with their posting ids (the same hash as `engine.posting_id`)."""
    lo = after or date(1900, 1, 1)

    def window(alias: SQL) -> SQL:
        return f"{alias}._delivered_on > $lo AND {alias}._delivered_on <= $hi"

    # 1 if the firm held 专精特新 status on the disbursement date, as the platform knew it when it
    # learned of the loan (the qualifications delivered by then): what the loan cap depends on
    zjtx = (f"EXISTS (SELECT 1 FROM raw.qualifications q WHERE q.uscc = l.uscc AND q.qualification = $zjtx "
            f"AND q._delivered_on <= l._delivered_on AND (q._valid_to IS NULL OR q._valid_to > l._delivered_on) "
            f"AND {within('qualifications', d='l.disbursed_on')})::INTEGER")

    subsidy = (f"CASE WHEN interest_paid_fen > 0 THEN ((outstanding_fen + principal_repaid_fen) * {int(cfg.subsidy_rate_bp)} "
               "+ 60000) // 120000 ELSE 0 END" if cfg.subsidy_enabled else "0")
    status = f"""(SELECT s.*, l.bank_id, last_day(CAST(s.period || '-01' AS DATE)) AS period_end FROM raw.loan_status s
                 JOIN (SELECT DISTINCT loan_id, bank_id FROM raw.loans) l USING (loan_id) WHERE {window('s')})"""
    parts = [
        f"SELECT 'disbursement', disbursed_on, _delivered_on, bank_id, loan_id, amount_fen, 'disbursed', {zjtx} "
        f"FROM raw.loans l "
        f"WHERE {window('l')}",
        # one servicing event per monthly status: the principal repaid and the interest subsidy, on the
        # principal outstanding at the start of the month, for months with interest paid
        f"SELECT 'servicing', period_end, _delivered_on, bank_id, loan_id, principal_repaid_fen, period, {subsidy} "
        f"FROM {status} WHERE principal_repaid_fen > 0 OR {subsidy} > 0",
        f"SELECT 'non_performing', period_end, _delivered_on, bank_id, loan_id, 0, 'npl', 0 FROM {status} "
        f"WHERE classification IN {NPL_CLASSES}",
        f"SELECT r.event_type, r.event_date, r._delivered_on, l.bank_id, r.loan_id, r.amount_fen, r.event_id, 0 "
        f"FROM raw.loan_recoveries r JOIN (SELECT DISTINCT loan_id, bank_id FROM raw.loans) l USING (loan_id) "
        f"WHERE {window('r')}",
    ]
    if cfg.auto_claim:  # lodged the day the platform learns of it
        parts.append(f"SELECT 'claim', _delivered_on, _delivered_on, bank_id, loan_id, 0, 'claim', 0 FROM {status} "
                     f"WHERE classification IN {NPL_CLASSES}")
    if cfg.rewards_enabled:
        month, day = cfg.rewards_posted_on
        dates = [date(y + 1, month, day) for y in range(lo.year - 1, upto.year) if lo < date(y + 1, month, day) <= upto]
        for on in dates:
            parts.append(f"SELECT DISTINCT 'reward', DATE {lit(on)}, DATE {lit(on)}, bank_id, '', 0, {lit(on.year - 1)}, 0 "
                         "FROM raw.loans")
    rank = " ".join(f"WHEN {lit(t)} THEN {int(r)}" for t, r in EVENT_ORDER.items())
    # same-day duplicates of one event (a status row delivered twice) collapse to one
    rows = con.execute(f"""
        SELECT type, eff, known, bank, coalesce(loan, ''), coalesce(amt, 0), key, extra,
               left(sha256(type || '|' || bank || '|' || coalesce(loan, '') || '|' || key), 24) AS pid
        FROM (SELECT DISTINCT * FROM ({" UNION ALL ".join(parts)}) e(type, eff, known, bank, loan, amt, key, extra))
        ORDER BY eff, CASE type {rank} END, coalesce(loan, ''), key, known, amt""",
                       {"lo": lo, "hi": upto, "zjtx": "zhuanjingtexin"}).fetchall()
    return [Event(*r[:8]) for r in rows], [r[8] for r in rows]


def load_pool(con: duckdb.DuckDBPyConnection, cfg: PoolConfig, calendar: WorkingDays, events: list[Event],
              ids: list[str]) -> Pool:
    """The pool as the ledger left it, for these events: every balance, the state of the loans they
    touch (and of the loans above the cap and those with claims waiting, which every claim needs),
    the waiting claims, and which of the events were applied before (as last corrected)."""
    pool = Pool(cfg, calendar, legs_of=lambda pid: tuple(Leg(*r) for r in con.execute(
        "SELECT account, debit_fen, credit_fen FROM ledger.postings WHERE posting_id = ? ORDER BY leg",
        [pid]).fetchall()))
    pool.balances = {a: int(b) for a, b in con.execute(
        "SELECT account, sum(debit_fen) - sum(credit_fen) FROM ledger.postings GROUP BY account").fetchall()}
    for bank, year, lent, npl in con.execute("""
            SELECT bank_id, disbursed_year, sum(eligible_fen), coalesce(sum(eligible_fen) FILTER (npl_on IS NOT NULL), 0)
            FROM ledger.loan_state GROUP BY ALL""").fetchall():
        pool.lending_by_year[(bank, year)] = int(lent)
        pool.npl_by_year[(bank, year)] = int(npl)
    candidates = pa.table({"event_id": ids, "loan_id": [e.loan_id for e in events]})
    con.register("_candidates", candidates)
    try:
        rows = con.execute("SELECT event_id, amount_fen, extra_fen, correction FROM ledger.events "
                           "SEMI JOIN _candidates USING (event_id) ORDER BY correction").fetchall()
        pool.seen = {pid: (amt, extra) for pid, amt, extra, _ in rows}  # the latest correction wins
        pool.corrections = {pid: n for pid, _, _, n in rows if n}
        # the waiting claims (a loan's earlier claim is known from its state: loan.claim_id)
        for r in con.execute("SELECT * FROM ledger.claims WHERE status = ? ORDER BY lodged_on, loan_id, claim_id",
                             ["waiting"]).fetchall():
            claim = pool.claims[r[0]] = Claim(*r)
            pool.waiting.setdefault(claim.bank_id, []).append(claim.claim_id)
        # the loans the events touch; and those above the cap or with a claim waiting, which every claim needs
        for r in con.execute("""
                SELECT * FROM ledger.loan_state SEMI JOIN _candidates USING (loan_id)
                UNION ALL
                SELECT * FROM ledger.loan_state
                WHERE eligible_fen < disbursed_fen OR loan_id IN (SELECT loan_id FROM ledger.claims WHERE status = ?)""",
                             ["waiting"]).fetchall():
            loan = pool.loans[r[0]] = LoanState(*r[1:])
            if loan.eligible_fen < loan.disbursed_fen:
                pool.over_cap.setdefault(loan.bank_id, set()).add(r[0])
    finally:
        con.unregister("_candidates")
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
    events, ids = events_between(con, after, business_date, cfg)
    pool = load_pool(con, cfg, calendar, events, ids)
    seq = con.execute("SELECT coalesce(max(seq), 0) FROM ledger.postings").fetchall()[0][0]
    postings: list[tuple[int, Posting]] = []
    serviced: list[tuple[int, str, Event]] = []  # servicing postings, written set-wise
    payouts: list[Payout] = []
    lodged: list[Claim] = []
    over_cap: list[OverCap] = []
    new_events: list[tuple[str, Event, int]] = []  # (event id, event, correction number)
    seen = pool.seen
    for pid, ev in zip(ids, events):
        if ev.type == "servicing" and SET_WISE_SERVICING and pid not in seen:  # a correction goes the generic way
            legs = pool.service(ev, pid)
            new_events.append((pid, ev, 0))
            if legs:
                seq += 1
                serviced.append((seq, pid, ev))
            continue
        applied = pool.apply(ev, pid)
        if applied.duplicate:
            continue
        new_events.append((pid, ev, pool.corrections.get(pid, 0)))
        for posting in applied.postings:
            seq += 1
            postings.append((seq, posting))
        payouts += applied.payouts
        if applied.claim:
            lodged.append(applied.claim)
        if applied.over_cap:
            over_cap.append(applied.over_cap)
    claims = [pool.claims[c] for c in sorted(pool.changed_claims)]  # lodged, paid or settled tonight
    touched = {e.loan_id for _, e, _ in new_events if e.loan_id} | {c.loan_id for c in claims}
    with transaction(con):
        write_postings(con, postings, cfg)
        write_servicing(con, serviced, cfg)
        _write_rest(con, business_date, after, new_events, claims, payouts, over_cap, pool,
                    touched, cfg, len(postings) + len(serviced))
    counts: dict[str, int] = {}
    for c in lodged:
        counts[c.status] = counts.get(c.status, 0) + 1
    return PostingSummary(business_date, len(new_events), len(events) - len(new_events), len(postings) + len(serviced),
                          counts, len(payouts), len(over_cap))


def write_postings(con: duckdb.DuckDBPyConnection, postings: list[tuple[int, Posting]], cfg: PoolConfig) -> None:
    """Insert every leg of every (sequence number, posting); the caller's transaction makes them
    all-or-nothing."""
    if not postings:
        return
    seqs = [seq for seq, _ in postings]
    head = list(zip(*(p for _, p in postings)))  # columns of the Posting tuples
    fields = Posting._fields
    heads = pa.table({"seq": seqs} | {f: head[fields.index(f)] for f in (
        "posting_id", "bank_id", "loan_id", "event_type", "effective_date", "business_date", "memo")})
    flat = [leg for _, p in postings for leg in p.legs]
    legs = pa.table({
        "seq": [seq for seq, p in postings for _ in p.legs],
        "leg": [n for _, p in postings for n in range(1, len(p.legs) + 1)],
        "account": [leg[0] for leg in flat], "debit_fen": [leg[1] for leg in flat], "credit_fen": [leg[2] for leg in flat]})
    con.register("_heads", heads)
    con.register("_legs", legs)
    try:
        con.execute(f"""INSERT INTO ledger.postings
                        SELECT l.seq, h.posting_id, l.leg, l.account, h.bank_id, h.loan_id, h.event_type,
                               h.effective_date, h.business_date, l.debit_fen, l.credit_fen, h.memo, {int(cfg.version)}
                        FROM _legs l JOIN _heads h USING (seq) ORDER BY l.seq, l.leg""")
    finally:
        con.unregister("_legs")
        con.unregister("_heads")
    _add_accounts(con, sorted({leg[0] for leg in flat}))


def write_servicing(con: duckdb.DuckDBPyConnection, serviced: list[tuple[int, str, Event]], cfg: PoolConfig) -> None:
    """The legs of the night's servicing postings, built in SQL exactly as the engine's `_servicing`
    builds them: the principal pair if any principal was repaid, then the subsidy pair if any."""
    if not serviced:
        return
    seqs, pids, evs = zip(*serviced)
    col = dict(zip(Event._fields, zip(*evs)))
    con.register("_serviced", pa.table({
        "seq": seqs, "posting_id": pids, "bank_id": col["bank_id"], "loan_id": col["loan_id"],
        "effective_date": col["effective_date"], "business_date": col["business_date"],
        "amount_fen": col["amount_fen"], "extra_fen": col["extra_fen"]}))
    kinds = ", ".join(f"({n}, {lit(k)}, {n > 2})" for n, k in enumerate(SERVICING_ACCOUNTS, start=1))
    try:
        con.execute(f"""INSERT INTO ledger.postings
            SELECT s.seq, s.posting_id, CASE WHEN k.subsidy AND s.amount_fen = 0 THEN k.pos - 2 ELSE k.pos END,
                   k.kind || ':' || s.bank_id, s.bank_id, s.loan_id, 'servicing', s.effective_date, s.business_date,
                   CASE WHEN k.pos % 2 = 1 THEN CASE WHEN k.subsidy THEN s.extra_fen ELSE s.amount_fen END ELSE 0 END,
                   CASE WHEN k.pos % 2 = 0 THEN CASE WHEN k.subsidy THEN s.extra_fen ELSE s.amount_fen END ELSE 0 END,
                   '', {int(cfg.version)}
            FROM _serviced s, (VALUES {kinds}) k(pos, kind, subsidy)
            WHERE CASE WHEN k.subsidy THEN s.extra_fen ELSE s.amount_fen END > 0
            ORDER BY s.seq, 3""")
        banks = [b for (b,) in con.execute("SELECT DISTINCT bank_id FROM _serviced ORDER BY 1").fetchall()]
    finally:
        con.unregister("_serviced")
    _add_accounts(con, sorted(f"{k}:{b}" for b in banks for k in SERVICING_ACCOUNTS))


def _add_accounts(con: duckdb.DuckDBPyConnection, accounts: list[str]) -> None:
    con.register("_accounts", pa.table({
        "account": accounts, "bank_id": [a.split(":", 1)[1] for a in accounts],
        "kind": [a.split(":", 1)[0] for a in accounts], "normal_side": [NORMAL_SIDE[a.split(":", 1)[0]] for a in accounts]}))
    try:  # one statement, not one per row: DuckDB's executemany is slow
        con.execute("INSERT INTO ledger.accounts SELECT * FROM _accounts ANTI JOIN ledger.accounts USING (account)")
    finally:
        con.unregister("_accounts")


def _write_rest(con, business_date: date, after: date | None, events: list[tuple[str, Event, int]],
                claims: list[Claim], payouts: list[Payout], over_cap: list[OverCap], pool: Pool, touched: set[str],
                cfg: PoolConfig, n_postings: int) -> None:
    if events:
        ids, evs, corrections = zip(*events)
        col = dict(zip(Event._fields, zip(*evs)))  # the events' fields as columns
        con.register("_events", pa.table({
            "event_id": ids, "event_type": col["type"], "bank_id": col["bank_id"], "loan_id": col["loan_id"],
            "event_key": col["key"], "effective_date": col["effective_date"], "business_date": col["business_date"],
            "amount_fen": col["amount_fen"], "extra_fen": col["extra_fen"], "correction": corrections}))
        con.execute("INSERT INTO ledger.events SELECT * FROM _events")  # in the order applied
        con.unregister("_events")
    if claims:
        fields = Claim.__dataclass_fields__
        con.register("_claims", pa.table({f: [getattr(c, f) for c in claims] for f in fields}))
        con.execute("DELETE FROM ledger.claims WHERE claim_id IN (SELECT claim_id FROM _claims)")
        con.execute("INSERT INTO ledger.claims SELECT * FROM _claims ORDER BY claim_id")
        con.unregister("_claims")
    for table, rows, fields in (("claim_payouts", payouts, Payout._fields), ("exceptions", over_cap, OverCap._fields)):
        if rows:
            con.register("_rows", pa.table(dict(zip(fields, zip(*rows)))))
            con.execute(f"INSERT INTO ledger.{table} SELECT * FROM _rows")
            con.unregister("_rows")
    if touched:
        fields = [f for f in LoanState.__dataclass_fields__]
        loan_ids = sorted(touched)
        state_of = operator.attrgetter(*fields)
        columns = zip(*(state_of(pool.loans[lid]) for lid in loan_ids))
        con.register("_state", pa.table({"loan_id": loan_ids} | dict(zip(fields, columns))))
        con.execute("DELETE FROM ledger.loan_state WHERE loan_id IN (SELECT loan_id FROM _state)")
        con.execute("INSERT INTO ledger.loan_state SELECT * FROM _state ORDER BY loan_id")
        con.unregister("_state")
    # a date posted again keeps its record; events that arrived late for it add to the counts
    con.execute("""INSERT INTO ledger.runs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (business_date) DO UPDATE
                   SET events = ledger.runs.events + excluded.events, postings = ledger.runs.postings + excluded.postings""",
                [business_date, after, len(events), n_postings, cfg.version, cfg.content_hash])


def rebuild(con: duckdb.DuckDBPyConnection, cfg: PoolConfig, calendar: WorkingDays) -> list[PostingSummary]:
    """Replay every posted business date from the loan book into an empty ledger, in order; the tables
    are created anew, so a ledger of an earlier layout is upgraded."""
    ensure(con, "ledger.runs")  # the dates to replay
    dates = [d for (d,) in con.execute("SELECT business_date FROM ledger.runs ORDER BY 1").fetchall()]
    with transaction(con):
        for table in LEDGER_TABLES:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        ensure(con, *LEDGER_TABLES)
    return [post_business_date(con, d, cfg, calendar) for d in dates]

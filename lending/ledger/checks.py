"""What must hold of the ledger after every night: the pool's invariants and the loan-book reconciliation."""

from __future__ import annotations

import duckdb

from lending.ledger.config import PoolConfig
from valuecredit.checks import CheckOutcome


def check_ledger(con: duckdb.DuckDBPyConnection, cfg: PoolConfig) -> list[tuple[str, CheckOutcome]]:
    out = []
    unbalanced, total = con.execute("""
        SELECT count(*) FILTER (d <> c), coalesce(sum(d) - sum(c), 0) FROM (
            SELECT posting_id, sum(debit_fen) AS d, sum(credit_fen) AS c FROM ledger.postings GROUP BY posting_id)""").fetchone()
    out.append(("debits_equal_credits", CheckOutcome(
        unbalanced == 0 and total == 0, f"{unbalanced} postings out of balance; overall debits - credits = {total} fen",
        {"unbalanced_postings": unbalanced, "overall_difference_fen": int(total)})))

    # running balances per bank in posting order: the quota after each posting, and the cap then
    running = """
        SELECT seq, bank_id, event_type,
               -sum(sum(CASE WHEN account LIKE 'quota_available:%' THEN debit_fen - credit_fen ELSE 0 END))
                    OVER (PARTITION BY bank_id ORDER BY seq) AS quota,
               sum(sum(CASE WHEN account LIKE 'loan_principal:%' THEN debit_fen - credit_fen ELSE 0 END))
                    OVER (PARTITION BY bank_id ORDER BY seq) AS principal,
               bool_or(account LIKE 'quota_available:%' AND credit_fen > 0) AS accrues
        FROM ledger.postings GROUP BY seq, bank_id, event_type"""
    # a correction may leave a quota below zero (an accrual drawn before the loan was corrected down,
    # made good by the next accruals); a payout never may
    negative, over_cap = con.execute(f"""
        SELECT count(*) FILTER (quota < 0 AND event_type = ?),
               count(*) FILTER (accrues AND quota > (principal * {int(cfg.cap_bp)} + 5000) // 10000)
        FROM ({running})""", ["claim"]).fetchone()
    out.append(("payouts_within_quota", CheckOutcome(
        negative == 0, f"{negative} payouts left a bank's quota below zero", {"payouts_over_quota": negative})))
    out.append(("cap_held_at_posting", CheckOutcome(
        over_cap == 0, f"{over_cap} accruals took a bank's quota above {cfg.cap_bp / 100:.2f} % of its balance",
        {"accruals_over_cap": over_cap})))

    # the claims' payouts are the money paid out: the same postings, the same amounts, the same dates
    unmatched = con.execute("""
        SELECT count(*) FROM (
            SELECT posting_id, business_date, amount_fen FROM ledger.claim_payouts
            EXCEPT ALL
            SELECT posting_id, business_date, sum(credit_fen) FROM ledger.postings
            WHERE event_type = ? AND starts_with(account, ?) GROUP BY ALL)""", ["claim", "quota_used:"]).fetchone()[0]
    unlisted = con.execute("""
        SELECT count(DISTINCT posting_id) FROM ledger.postings WHERE event_type = ?
        AND posting_id NOT IN (SELECT posting_id FROM ledger.claim_payouts)""", ["claim"]).fetchone()[0]
    out.append(("payouts_match_claims", CheckOutcome(
        unmatched == 0 and unlisted == 0,
        f"{unmatched} claim payouts without their posting (same id, business date, amount); "
        f"{unlisted} payout postings without a claim payout", {"payouts_unmatched": unmatched,
                                                               "postings_unlisted": unlisted})))

    dup_legs, split_ids = con.execute("""
        SELECT (SELECT count(*) - count(DISTINCT (posting_id, leg)) FROM ledger.postings),
               (SELECT count(*) FROM (SELECT posting_id FROM ledger.postings GROUP BY posting_id
                                      HAVING count(DISTINCT seq) > 1 OR count(DISTINCT event_type) > 1))""").fetchone()
    out.append(("posting_ids_unique", CheckOutcome(
        dup_legs == 0 and split_ids == 0, f"{dup_legs} repeated legs; {split_ids} ids used by more than one posting",
        {"repeated_legs": dup_legs, "ids_reused": split_ids})))

    diffs = con.execute("""
        WITH book AS (
            SELECT bank_id, sum(amount_fen) AS disbursed FROM staging.loans GROUP BY bank_id),
        repaid AS (
            SELECT l.bank_id, sum(s.principal_repaid_fen) AS repaid FROM staging.loan_status s
            JOIN staging.loans l USING (loan_id) GROUP BY l.bank_id),
        recovered AS (
            SELECT l.bank_id, sum(r.amount_fen) AS gone FROM staging.loan_recoveries r
            JOIN staging.loans l USING (loan_id) GROUP BY l.bank_id),
        ledger AS (
            SELECT bank_id, sum(debit_fen) - sum(credit_fen) AS principal FROM ledger.postings
            WHERE account LIKE 'loan_principal:%' GROUP BY bank_id)
        SELECT bank_id, coalesce(disbursed, 0) - coalesce(repaid, 0) - coalesce(gone, 0) AS book,
               coalesce(principal, 0) AS ledger
        FROM book FULL JOIN repaid USING (bank_id) FULL JOIN recovered USING (bank_id) FULL JOIN ledger USING (bank_id)
        WHERE coalesce(disbursed, 0) - coalesce(repaid, 0) - coalesce(gone, 0) <> coalesce(principal, 0)
        ORDER BY bank_id""").fetchall()
    out.append(("outstanding_matches_loan_book", CheckOutcome(
        not diffs, "ledger outstanding equals the loan book (disbursed - repaid - recovered - written off) for every bank"
        if not diffs else "banks whose ledger outstanding differs from the loan book: "
        + "; ".join(f"{b} book {x} ledger {y}" for b, x, y in diffs), {"banks_differing": len(diffs)})))
    return out

"""Pool statements per bank and for the programme, over any span of business dates.

Every figure counts an event on its business date (the day the platform learned it): the money
lines from the postings, the claim counts from the claims and their payouts, so a span's payouts
are exactly the payouts it counts. The quota is shown twice, named as such: the quota balance
(accrued less used, which repayments can leave above 4 % of the balance) and the quota available
(capped at 4 % of the programme balance: what a claim could draw).
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from lending.ledger.config import PoolConfig, load_pool_config
from valuecredit.sqltext import lit

# statement line -> (account kind, sign applied to debit - credit, event types counted; None = all)
LINES = {
    "accruals": ("quota_available", -1, ("disbursement",)),
    "payouts": ("quota_used", -1, ("claim",)),
    "compensation_paid": ("gov_compensation", 1, ("claim",)),
    "recoveries_returned": ("gov_compensation", -1, ("recovery",)),
    "rewards": ("gov_rewards", 1, ("reward",)),
    "interest_subsidy": ("gov_interest_subsidy", 1, ("servicing",)),
    "disbursed": ("loan_principal", 1, ("disbursement",)),
    "written_off": ("written_off", 1, ("write_off",)),
}
# the columns that count (claims, payouts, loans); the others are amounts in fen
COUNTS = ("claims_lodged", "claims_paid_out", "payouts_on_time", "payouts_late", "loans_over_cap")


def statement(con: duckdb.DuckDBPyConnection, start: date, end: date, bank_id: str | None = None,
              cfg: PoolConfig | None = None) -> pd.DataFrame:
    """Per bank (and a programme total): opening quota balance, the period's movements, closing quota
    balance and available quota, outstanding and programme balance, claims and payouts, in fen.
    Opening is as posted before `start`, closing as posted through `end` (business dates)."""
    cap_bp = (cfg or load_pool_config()).cap_bp
    movement = ", ".join(
        f"coalesce(sum({sign} * (debit_fen - credit_fen)) FILTER (account LIKE '{kind}:%' "
        f"AND event_type IN ({', '.join(lit(t) for t in types)}) AND business_date BETWEEN $s AND $e), 0) AS {name}"
        for name, (kind, sign, types) in LINES.items())
    quota = "sum(credit_fen - debit_fen) FILTER (account LIKE 'quota_available:%'"
    principal = "sum(debit_fen - credit_fen) FILTER (account LIKE 'loan_principal:%'"
    where = "WHERE bank_id = $b" if bank_id else ""
    args = {"s": start, "e": end} | ({"b": bank_id} if bank_id else {})
    per_bank = con.execute(f"""
        SELECT bank_id,
               coalesce({quota} AND business_date < $s), 0) AS opening_quota_balance, {movement},
               coalesce({quota} AND business_date <= $e), 0) AS closing_quota_balance,
               coalesce({principal} AND business_date <= $e), 0) AS outstanding
        FROM ledger.postings {where} GROUP BY bank_id ORDER BY bank_id""", args).df()
    bank_filter = "AND bank_id = $b" if bank_id else ""
    # principal above the loan cap is not programme balance: each such loan counts pro rata
    above = con.execute(f"""
        SELECT s.bank_id, sum(p.outstanding - p.outstanding * s.eligible_fen // s.disbursed_fen) AS above_cap
        FROM ledger.loan_state s JOIN (
            SELECT loan_id, sum(debit_fen - credit_fen) AS outstanding FROM ledger.postings
            WHERE starts_with(account, $kind) AND business_date <= $e {bank_filter}
              AND loan_id IN (SELECT loan_id FROM ledger.loan_state WHERE eligible_fen < disbursed_fen)
            GROUP BY loan_id) p USING (loan_id)
        GROUP BY s.bank_id""", {k: v for k, v in args.items() if k != "s"} | {"kind": "loan_principal:"}).df()
    claims = con.execute(f"""
        SELECT bank_id, sum(lodged) AS claims_lodged, sum(paid_out) AS claims_paid_out,
               sum(on_time) AS payouts_on_time, sum(late) AS payouts_late, sum(over_cap) AS loans_over_cap FROM (
            SELECT bank_id, count(*) AS lodged, 0 AS paid_out, 0 AS on_time, 0 AS late, 0 AS over_cap FROM ledger.claims
            WHERE business_date BETWEEN $s AND $e {bank_filter} GROUP BY bank_id
            UNION ALL
            SELECT bank_id, 0, count(DISTINCT claim_id), count(*) FILTER (on_time), count(*) FILTER (NOT on_time), 0
            FROM ledger.claim_payouts WHERE business_date BETWEEN $s AND $e {bank_filter} GROUP BY bank_id
            UNION ALL
            SELECT bank_id, 0, 0, 0, 0, count(*) FROM ledger.exceptions
            WHERE business_date BETWEEN $s AND $e {bank_filter} GROUP BY bank_id)
        GROUP BY bank_id""", args).df()
    out = per_bank.merge(above, on="bank_id", how="left").merge(claims, on="bank_id", how="left").fillna(0)
    numeric = [c for c in out.columns if c != "bank_id"]
    out[numeric] = out[numeric].astype("int64")
    out["programme_balance"] = out["outstanding"] - out.pop("above_cap")
    cap = (out["programme_balance"].clip(lower=0) * cap_bp + 5_000) // 10_000
    out["closing_quota_available"] = out["closing_quota_balance"].clip(lower=0).where(out["closing_quota_balance"] < cap, cap)
    out = out[["bank_id", "opening_quota_balance", *LINES, "closing_quota_balance", "closing_quota_available",
               "outstanding", "programme_balance", *COUNTS]]
    if not bank_id and len(out):
        total = out[out.columns[1:]].sum().to_frame().T
        total.insert(0, "bank_id", "programme")
        out = pd.concat([out, total], ignore_index=True)
    return out


def over_cap_loans(con: duckdb.DuckDBPyConnection, bank_id: str | None = None) -> list[tuple]:
    """The exception list: (bank, loan, disbursed on, amount fen, cap fen, reason) of every loan
    disbursed above the loan cap in force, one bank's or every bank's."""
    return con.execute("""SELECT bank_id, loan_id, disbursed_on, amount_fen, cap_fen, reason FROM ledger.exceptions
                          WHERE $bank IS NULL OR bank_id = $bank ORDER BY bank_id, disbursed_on, loan_id""",
                       {"bank": bank_id}).fetchall()

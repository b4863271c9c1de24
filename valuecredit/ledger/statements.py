"""Pool statements per bank and for the programme, over any span of business dates."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

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


def statement(con: duckdb.DuckDBPyConnection, start: date, end: date, bank_id: str | None = None) -> pd.DataFrame:
    """Per bank (and a programme total): opening quota, the period's movements, closing quota, in fen.
    Opening is as posted before `start`, closing as posted through `end` (business dates)."""
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
               coalesce({quota} AND business_date < $s), 0) AS opening_quota, {movement},
               coalesce({quota} AND business_date <= $e), 0) AS closing_quota,
               coalesce({principal} AND business_date <= $e), 0) AS outstanding
        FROM ledger.postings {where} GROUP BY bank_id ORDER BY bank_id""", args).df()
    claims = con.execute(f"""
        SELECT bank_id, count(*) AS claims, count(*) FILTER (status = 'paid') AS claims_paid,
               count(*) FILTER (status = 'refused_late') AS claims_late
        FROM ledger.claims WHERE business_date BETWEEN $s AND $e {'AND bank_id = $b' if bank_id else ''}
        GROUP BY bank_id""", args).df()
    out = per_bank.merge(claims, on="bank_id", how="left").fillna(0)
    numeric = [c for c in out.columns if c != "bank_id"]
    out[numeric] = out[numeric].astype("int64")
    if not bank_id and len(out):
        total = out[numeric].sum().to_frame().T
        total.insert(0, "bank_id", "programme")
        out = pd.concat([out, total], ignore_index=True)
    return out

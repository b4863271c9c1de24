"""The compensation-pool ledger (one asset posting the business date's events, with its invariants) and
the applications' decision deadlines: both count Chinese working days."""


import dagster as dg

from lending.deadlines import build_deadlines
from lending.ledger.checks import check_ledger
from lending.ledger.store import post_business_date
from pipelines.partitions import business_date, business_days
from pipelines.resources import PoolFiles, ProgressReporter, Store

LEDGER_CHECKS = ("debits_equal_credits", "payouts_within_quota", "cap_held_at_posting", "payouts_match_claims",
                 "posting_ids_unique", "outstanding_matches_loan_book")


@dg.asset(
    key=["ledger", "postings"], group_name="pool", partitions_def=business_days, kinds={"duckdb"},
    deps=[dg.AssetKey(["staging", s]) for s in ("loans", "loan_status", "loan_recoveries")],
    description="Double-entry postings of the risk-compensation pool for the events learned up to the business date: "
                "accruals (capped; loans above the loan cap on ledger.exceptions), claims due within 10 working days "
                "and paid in order of lodging as quota frees, recoveries shared back, write-offs, rewards, interest "
                "subsidy, corrections as reversals. Claims in ledger.claims, their payouts in ledger.claim_payouts.",
)
def ledger_postings(context: dg.AssetExecutionContext, store: Store, pool_files: PoolFiles,
                    progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    cfg = pool_files.pool_config()  # bad parameters stop here, before anything is posted
    calendar = pool_files.calendar()
    with store.connect() as con:
        s = post_business_date(con, business_date(context), cfg, calendar)
    progress.done("ledger", f"{s.events:,} events, {s.postings:,} postings, claims {s.claims or 'none'}, "
                            f"{s.payouts:,} payouts, {s.over_cap:,} loans above the loan cap")
    return dg.MaterializeResult(metadata={"events": s.events, "duplicates": s.duplicates, "postings": s.postings,
                                          "claims": s.claims, "payouts": s.payouts, "loans_over_cap": s.over_cap,
                                          "pool_config_version": cfg.version})


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(name, asset=["ledger", "postings"], blocking=True) for name in LEDGER_CHECKS],
    description="Debits equal credits, no payout beyond the quota, the cap held at every accrual, the claims' "
                "payouts equal to the payout postings, unique posting ids, and the ledger's outstanding balance per "
                "bank equal to the loan book's.",
)
def ledger_checks(context: dg.AssetCheckExecutionContext, store: Store, pool_files: PoolFiles):
    cfg = pool_files.pool_config()
    with store.connect() as con:
        for name, out in check_ledger(con, cfg):
            yield dg.AssetCheckResult(asset_key=["ledger", "postings"], check_name=name, passed=out.passed,
                                      description=out.description, metadata=out.metadata)


@dg.asset(
    key=["decisions", "application_deadlines"], group_name="lending", partitions_def=business_days, kinds={"duckdb"},
    deps=[dg.AssetKey(["staging", "loan_applications"])],
    description="Every application with its 7-working-day decision deadline (Chinese calendar with 调休) and "
                "its status on the business date: on time, late, pending or overdue.",
)
def application_deadlines(context: dg.AssetExecutionContext, store: Store, pool_files: PoolFiles,
                          progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    calendar = pool_files.calendar()
    with store.connect() as con:
        s = build_deadlines(con, business_date(context), calendar)
    progress.done("deadlines", f"{s.applications:,} applications, {s.late:,} decided late, {s.overdue:,} overdue")
    return dg.MaterializeResult(metadata={"applications": s.applications, "late": s.late, "overdue": s.overdue})

"""Dagster definitions: `dagster dev` / `dg dev` load this module (see [tool.dagster])."""


from datetime import timedelta

import dagster as dg

from pipelines.coverage import firm_coverage
from pipelines.ingestion import source_assets, source_checks
from pipelines.ledger import application_deadlines, ledger_checks, ledger_postings
from pipelines.models import (
    early_warnings,
    eligibility,
    eligibility_checks,
    pd_champion,
    pd_checks,
    pd_scores,
    publication,
)
from pipelines.reports import audit_pack_report, bank_report_batches, portfolio_reports
from pipelines.resources import resources
from pipelines.scale_out import by_firm_partition, scale_out_job
from pipelines.scoring import commercial_value, indicators, score_checks

nightly_assets = [*source_assets, firm_coverage, indicators, commercial_value, pd_scores, eligibility, publication,
                  ledger_postings, application_deadlines, early_warnings, portfolio_reports, audit_pack_report,
                  bank_report_batches]
all_checks = [*source_checks, score_checks, pd_checks, eligibility_checks, ledger_checks]
all_assets = [*nightly_assets, pd_champion, by_firm_partition]

# One writer per DuckDB file: steps of a run execute in one process, one after another;
# dagster.yaml lets only one run at a time into the queue.
nightly_job = dg.define_asset_job(
    "nightly", selection=dg.AssetSelection.assets(*nightly_assets),
    executor_def=dg.in_process_executor,
    description="Ingest the day's deliveries, enforce the contracts, and rebuild everything downstream.",
)


@dg.schedule(job=nightly_job, cron_schedule="0 2 * * *", execution_timezone="Asia/Shanghai",
             default_status=dg.DefaultScheduleStatus.RUNNING)
def nightly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """At 02:00 Beijing time, process the business day that just ended."""
    business_date = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=business_date, partition_key=business_date)


retraining_job = dg.define_asset_job(
    "retrain_pd", selection=dg.AssetSelection.assets(pd_champion), executor_def=dg.in_process_executor,
    description="Retrain the PD model; the candidate replaces the champion only if it is better out of time.",
)


@dg.schedule(job=retraining_job, cron_schedule="0 4 1 * *", execution_timezone="Asia/Shanghai",
             default_status=dg.DefaultScheduleStatus.STOPPED)
def monthly_retraining(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """On the 1st of the month at 04:00, after the nightly run: off until the operator turns it on."""
    return dg.RunRequest(run_key=context.scheduled_execution_time.date().isoformat())


defs = dg.Definitions(
    assets=all_assets,
    asset_checks=all_checks,
    jobs=[nightly_job, retraining_job, scale_out_job],
    schedules=[nightly_schedule, monthly_retraining],
    resources=resources(),
    # what the UI materialises by hand runs in one process too: the store resource holds the writer
    # lock from its first step to its last, and DuckDB takes one writing process at a time anyway
    executor=dg.in_process_executor,
)

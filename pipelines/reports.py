"""Nightly reports: each bank's batch of firm score reports (its new leads), the portfolio monitoring
report for the programme and for each bank, and the regulator's audit pack for the model that decided
the night; written to a build folder git ignores."""

from pathlib import Path

import dagster as dg

from lending.eligibility import previous_decision_date
from models.nightly import model_of_night
from pipelines.ledger import application_deadlines, ledger_postings
from pipelines.models import early_warnings, pd_scores, publication
from pipelines.partitions import business_date, business_days
from pipelines.resources import (
    CatalogueFile,
    ModelRegistry,
    PoolFiles,
    ProductsFile,
    ProgressReporter,
    ReportsFolder,
    Store,
)
from reports.audit import audit_pack
from reports.firm import bank_batches
from reports.portfolio import write_portfolio


@dg.asset(
    key=["reports", "portfolio"], group_name="reports", partitions_def=business_days, kinds={"html"},
    deps=[publication, ledger_postings, application_deadlines, early_warnings],
    description="Portfolio monitoring for the programme and each bank: distributions, grade migration, PSI, "
                "eligibility and approvals, early warnings, the pool statement, deadline breaches.",
)
def portfolio_reports(context: dg.AssetExecutionContext, store: Store, products: ProductsFile, catalogue: CatalogueFile,
                      pool_files: PoolFiles, reports_folder: ReportsFolder,
                      progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    as_of, out = business_date(context), Path(reports_folder.path) / "portfolio"
    cat, pool = catalogue.load(), pool_files.pool_config()
    with store.connect() as con:
        written = [write_portfolio(con, as_of, out, bank, cat=cat, pool=pool)
                   for bank in [None, *sorted(products.load().banks)]]
    progress.done("portfolio reports", f"{len(written)} (programme and banks) in {out}")
    return dg.MaterializeResult(metadata={"reports": len(written), "folder": str(out)})


@dg.asset(
    key=["reports", "audit_pack"], group_name="reports", partitions_def=business_days, kinds={"html"},
    deps=[pd_scores, publication],
    description="The regulator's audit pack for the night's model: model card, SHAP importance and dependence, "
                "outcomes and calibration by segment with disparities flagged, version history.",
)
def audit_pack_report(context: dg.AssetExecutionContext, store: Store, registry: ModelRegistry, catalogue: CatalogueFile,
                      reports_folder: ReportsFolder, progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    as_of = business_date(context)
    with store.connect() as con:
        # a night without PDs: the pack says it ran on the 4+19+1 score and its rules alone, and why
        used = model_of_night(con, as_of)
        path = audit_pack(con, as_of, Path(registry.path), catalogue.load(), Path(reports_folder.path))
    progress.done("audit pack", f"no PD model: the night ran on the score alone, said in {path}" if used is None else str(path))
    # the version that decided the night: a rerun of a past night after a promotion names the model
    # that night used, which is no longer the champion
    return dg.MaterializeResult(metadata={"path": str(path), "model": used or "none"})


@dg.asset(
    key=["reports", "bank_batches"], group_name="reports", partitions_def=business_days, kinds={"html"},
    deps=[publication],
    description="For each bank, a score report on each firm newly eligible for one of its products since the "
                "previous night (on the first night, every eligible firm is new), showing only the bank's products, "
                "with an index; at most max_reports_per_bank (200), the largest limits first.",
)
def bank_report_batches(context: dg.AssetExecutionContext, store: Store, products: ProductsFile, catalogue: CatalogueFile,
                        reports_folder: ReportsFolder, progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    as_of, out = business_date(context), Path(reports_folder.path) / "banks"
    with store.connect() as con:
        before = previous_decision_date(con, as_of)
        done = bank_batches(con, sorted(products.load().banks), as_of, catalogue.load(), out,
                            new_since=before, limit=reports_folder.max_reports_per_bank)
    reports = sum(b.reports for b in done)
    progress.done("bank report batches", f"{reports:,} reports of {sum(b.eligible for b in done):,} new leads "
                  f"for {len(done)} banks"
                  + (f" (new since {before})" if before else "") + f" in {out}")
    return dg.MaterializeResult(metadata={"reports": reports, "new_since": str(before), "folder": str(out)})

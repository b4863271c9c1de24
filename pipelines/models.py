"""The PD model and what is decided with it: retraining (its own asset, on demand or monthly, not in the
nightly job, but for a store's first model, which the first night to find none trains) and the nightly
PDs with explanations, scored with the pinned champion; eligibility for every product.
Bodies call models.* and lending.*."""

from datetime import date
from pathlib import Path

import dagster as dg

from lending.checks import check_eligibility
from lending.eligibility import build_eligibility
from lending.gate import latest_decision_date
from lending.publish import publish
from lending.warnings import update_warnings
from models.checks import check_pd
from models.nightly import ScoringError, load_reason_codes, model_of_night, pinned_model, score_pd
from models.registry import champion
from models.train import TrainingError, retrain
from pipelines.partitions import business_date, business_days, retry_policy
from pipelines.resources import CatalogueFile, ModelRegistry, ProductsFile, ProgressReporter, PublicationFolder, Store
from pipelines.scoring import commercial_value, indicators
from valuecredit.sqltext import message_lines

PD_CHECKS = {"every_firm_one_pd": True, "explanations_add_up": True, "adverse_pds_have_used_reasons": True,
             "pd_rises_with_grade": False,
             "population_stability": False}  # name -> blocks publication; drift and grade order warn, a person decides


@dg.asset(
    key=["models", "pd_champion"], group_name="models", kinds={"lightgbm"},
    deps=[dg.AssetKey(["staging", s]) for s in ("loans", "loan_status", "loan_recoveries")],
    description="Retrain: a monotone GBM of court-recorded default over every firm, its base rate set by loan defaults, "
                "against the loan-book GBM (the better on the selection months is the candidate) and the "
                "WoE scorecard, registered; promoted only if it beats the 4+19+1 score on the population out of "
                "time (95 % interval, at least 100 events) and the current champion. Not part of the nightly job.",
)
def pd_champion(context: dg.AssetExecutionContext, store: Store, catalogue: CatalogueFile, registry: ModelRegistry,
                progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata=_retrain(store, catalogue, Path(registry.path), date.today(), progress))


def _retrain(store: Store, catalogue: CatalogueFile, registry: Path, decided_on: date,
             progress: ProgressReporter) -> dict:
    """Train, validate and register a candidate (`models.train.retrain`); what happened, as metadata."""
    try:
        with store.connect() as con:
            report = retrain(con, catalogue.load(), registry, decided_on)
    except TrainingError as exc:  # a loan book too short to learn from is the store's state, not a fault
        progress.done("pd model", f"not trained: {exc}")
        return {"trained": False, "reason": str(exc)}
    oot, decision, population = report["out_of_time"], report["decision"], report["population"]
    progress.done("pd model", f"{report['version']} ({report['method']}) AUC {population['auc']['model']:.4f} on the "
                              f"population out of time, {oot['gbm']['auc']:.4f} on loans: "
                              f"{'promoted' if decision['promoted'] else 'not promoted'} ({decision['reason']})")
    return {"trained": True, "version": report["version"], "method": report["method"], "promoted": decision["promoted"],
            "decision": decision["reason"], "population_oot_auc": population["auc"]["model"],
            "score_population_oot_auc": population["auc"]["score_4_19_1"],
            "population_oot_events": population["events"], "oot_auc": oot["gbm"]["auc"], "oot_ece": oot["gbm"]["ece"],
            "scorecard_oot_auc": oot["scorecard"]["auc"], "training_loans": report["train"]["loans"]}


def _first_champion(context: dg.AssetExecutionContext, store: Store, catalogue: CatalogueFile, registry: Path,
                    as_of: date, progress: ProgressReporter) -> dict:
    """A store with no PD model yet trains its first champion on its loan book on its newest night.
    When the book cannot support one, the candidate does not beat the 4+19+1 score, or training fails,
    no PD is stored, eligibility refuses pricing, the decisions are published all the same, and the
    run says why (a fault also fails it, once the decisions are out). What happened, as metadata."""
    with store.connect() as con:
        newer = latest_decision_date(con)
    if newer is not None and newer > as_of:  # a past night run again must not train on later data
        return {"trained": False, "reason": f"a store's first PD model is trained on its newest night, and {newer} is "
                                            f"newer than {as_of}"}
    try:
        return _retrain(store, catalogue, registry, as_of, progress)
    except Exception as exc:  # a fault: one line to the run; no retry trains again
        why = f"training the first PD model failed: {type(exc).__name__}: {next(iter(message_lines(str(exc))), '')}"
        context.log.error(why)
        return {"trained": False, "reason": why, "error": why}


def no_model_reason(first: dict) -> str:
    """Why a store still has no PD model after its first training, in the run's words."""
    return first["reason"] if not first["trained"] else f"not promoted: {first.get('decision') or 'no reason recorded'}"


@dg.asset(
    key=["scores", "pd"], group_name="models",
    deps=[indicators, commercial_value, *(dg.AssetKey(["staging", s]) for s in ("loans", "loan_status", "loan_recoveries"))],
    partitions_def=business_days, retry_policy=retry_policy, kinds={"duckdb", "lightgbm"},
    description="12-month PD of every firm from the pinned champion, with its model version; exact TreeSHAP "
                "contributions in scores.explanations, reason codes (zh/en), global importance and PSI. A store "
                "with no champion trains its first one here; without one the night stores no PD and says why.",
)
def pd_scores(context: dg.AssetExecutionContext, store: Store, catalogue: CatalogueFile, registry: ModelRegistry,
              progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    as_of, models = business_date(context), Path(registry.path)
    first = {} if champion(models) else _first_champion(context, store, catalogue, models, as_of, progress)
    if champion(models) is None:  # the night runs on the score and its rules alone, and says why
        why = no_model_reason(first)
        progress.done("pd", f"no PD model yet: {why}")
        return dg.MaterializeResult(metadata={"firms": 0, "no_model": why, **{f"first_model_{k}": v for k, v in first.items()}})
    try:
        model, codes = pinned_model(models), load_reason_codes()
        with store.connect() as con:
            s = score_pd(con, as_of, catalogue.load(), model, codes)
    except ScoringError as exc:  # no model, or codes that do not cover it: retrying cannot help
        raise dg.Failure(description=str(exc), allow_retries=False) from exc
    kept = s.firms - s.scored_again
    how = f"{s.scored_again:,} scored and explained, {kept:,} kept from the previous night" if kept else "all scored and explained"
    progress.done("pd", f"{s.firms:,} firms ({how}), model {s.model_version}, mean PD {s.mean_pd:.4f}")
    return dg.MaterializeResult(metadata={"firms": s.firms, "scored_again": s.scored_again, "model_version": s.model_version,
                                          "mean_pd": round(s.mean_pd, 6), "psi_shift": ", ".join(s.shifted) or "none",
                                          **{f"first_model_{k}": v for k, v in first.items()}})


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(name, asset=["scores", "pd"], blocking=blocks) for name, blocks in PD_CHECKS.items()],
    description="One PD per firm from the pinned model, contributions that add up to each log-odds, a reason "
                "(naming a feature the model uses) for every PD above the base, mean PD rising from the best grade "
                "to the worst, and population stability.",
)
def pd_checks(context: dg.AssetCheckExecutionContext, store: Store, registry: ModelRegistry):
    if champion(Path(registry.path)) is None:  # a night without a model must have stored no PD
        with store.connect() as con:
            stored = model_of_night(con, business_date(context))
        for name, blocks in PD_CHECKS.items():
            yield dg.AssetCheckResult(
                asset_key=["scores", "pd"], check_name=name, passed=stored is None,
                severity=dg.AssetCheckSeverity.ERROR if blocks else dg.AssetCheckSeverity.WARN,
                description=("no PD model yet: no PD stored for the date" if stored is None
                             else f"PDs of model {stored} stored for the date, but the registry has no champion"))
        return
    model = pinned_model(Path(registry.path))
    with store.connect() as con:
        for name, out in check_pd(con, business_date(context), model):
            severity = dg.AssetCheckSeverity.ERROR if PD_CHECKS[name] else dg.AssetCheckSeverity.WARN
            yield dg.AssetCheckResult(asset_key=["scores", "pd"], check_name=name, passed=out.passed,
                                      description=out.description, metadata=out.metadata, severity=severity)


@dg.asset(
    key=["decisions", "eligibility"], group_name="lending", deps=[commercial_value, pd_scores],
    partitions_def=business_days, retry_policy=retry_policy, kinds={"duckdb"},
    description="Every firm x every product: hard gates, shortfalls (condition, value, required), match degree, "
                "pre-approved limit (fen) and indicative rate, with model, catalogue, product-catalogue versions.",
)
def eligibility(context: dg.AssetExecutionContext, store: Store, products: ProductsFile,
                progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    catalogue = products.load()  # a bad product stops here, before anything is decided
    with store.connect() as con:
        s = build_eligibility(con, business_date(context), catalogue)
    progress.done("eligibility", f"{s.eligible_firms:,} of {s.firms:,} firms eligible for at least one of "
                                 f"{s.products} products; gated {s.gated}")
    return dg.MaterializeResult(metadata={"firms": s.firms, "eligible_pairs": s.eligible_pairs,
                                          "eligible_firms": s.eligible_firms, "products_version": catalogue.version,
                                          **{f"gate_{k}": v for k, v in s.gated.items()}})


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(n, asset=["decisions", "eligibility"], blocking=True)
           for n in ("every_firm_every_product", "decisions_explained_and_capped")],
    description="One row per firm and product; no eligible firm behind a hard gate or without authorisation; every "
                "refusal explained; every eligible limit priced, positive and within the programme's cap.",
)
def eligibility_checks(context: dg.AssetCheckExecutionContext, store: Store, products: ProductsFile):
    catalogue = products.load()
    with store.connect() as con:
        for name, out in check_eligibility(con, business_date(context), catalogue):
            yield dg.AssetCheckResult(asset_key=["decisions", "eligibility"], check_name=name, passed=out.passed,
                                      description=out.description, metadata=out.metadata)


@dg.asset(
    key=["decisions", "early_warnings"], group_name="lending", partitions_def=business_days, kinds={"duckdb"},
    deps=[pd_scores, commercial_value, dg.AssetKey(["ledger", "postings"])],
    description="Early warnings per lending bank for firms with outstanding loans: sustained drops in revenue, "
                "headcount or power, new arrears, a new negative-list hit, a PD jump; raised once, updated, closed.",
)
def early_warnings(context: dg.AssetExecutionContext, store: Store,
                   progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    with store.connect() as con:
        s = update_warnings(con, business_date(context))
    progress.done("early_warnings", f"{s.raised:,} raised, {s.updated:,} updated, {s.closed:,} closed, {s.open:,} open")
    return dg.MaterializeResult(metadata={"raised": s.raised, "updated": s.updated, "closed": s.closed, "open": s.open})


@dg.asset(
    key=["decisions", "publication"], group_name="lending", deps=[eligibility, early_warnings],
    partitions_def=business_days, retry_policy=retry_policy, kinds={"duckdb", "parquet", "csv", "excel"},
    description="Each bank's own eligibility rows (its products, authorised firms, personal data masked): schema "
                "bank_<id> swapped in one transaction, and <publish>/<bank>/<date>/ renamed into place: every night the "
                "change files since the bank's previous publication (withdrawals with their reason), on the bank's "
                "full-table days (weekly) also the full table (Parquet, CSV, Excel). Runs only after the eligibility "
                "checks pass; a failure leaves the previous publication.",
)
def publication(context: dg.AssetExecutionContext, store: Store, products: ProductsFile, publish_folder: PublicationFolder,
                progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    catalogue = products.load()
    with store.connect() as con:
        s = publish(con, business_date(context), catalogue, Path(publish_folder.path))
    progress.done("publication", f"{s.banks} banks, {sum(s.rows.values()):,} rows, in {s.folder}")
    return dg.MaterializeResult(metadata={"banks": s.banks, "rows": sum(s.rows.values()), "folder": s.folder})

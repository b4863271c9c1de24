"""The 4+19+1 score: indicators, then scores with their checks. Bodies call scoring."""


import dagster as dg

from pipelines.partitions import business_date, business_days, retry_policy
from pipelines.resources import CatalogueFile, ProgressReporter, Store
from scoring.changes import night_plan
from scoring.checks import check_scores
from scoring.score import build_indicators, build_scores

# a run tag: its value is the operator's reason to compute every firm again (Dagster UI: add the tag)
FULL_NIGHT_TAG = "valuecredit/full"
SCORE_CHECKS = ("score_ranges", "one_row_per_firm", "exclusions_have_hits", "indicator_missing_rates")


@dg.asset(
    key=["features", "indicators"], group_name="scoring", deps=[dg.AssetKey(["staging", "firm_coverage"])],
    partitions_def=business_days, retry_policy=retry_policy, kinds={"duckdb"},
    description="The 19 indicators of every registered firm as of the business date (point in time; NULL = no data): "
                "computed for the firms whose data or windows changed since the previous date, carried forward "
                "for the others (meta.night_plans says which night it was, meta.changed_firms which firms).",
)
def indicators(context: dg.AssetExecutionContext, store: Store,
               progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    as_of = business_date(context)
    with store.connect() as con:
        n = build_indicators(con, as_of, context.run.tags.get(FULL_NIGHT_TAG, ""))
        plan = night_plan(con, as_of)
    how = (f"{plan.changed:,} changed since {plan.previous}, the others carried forward" if plan.incremental
           else f"all computed: {plan.full_reason}")
    progress.done("indicators", f"{n:,} firms ({how})")
    return dg.MaterializeResult(metadata={"firms": n, "changed_firms": plan.changed, "previous": str(plan.previous),
                                          "full_reason": plan.full_reason or "none: incremental"})


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec(name, asset=["scores", "commercial_value"], blocking=True) for name in SCORE_CHECKS],
    description="Score ranges, one row per firm, a recorded hit behind every exclusion, missing rates within limit.",
)
def score_checks(context: dg.AssetCheckExecutionContext, store: Store, catalogue: CatalogueFile):
    as_of = business_date(context)
    with store.connect() as con:
        for name, out in check_scores(con, as_of, catalogue.load()):
            yield dg.AssetCheckResult(asset_key=["scores", "commercial_value"], check_name=name, passed=out.passed,
                                      description=out.description, metadata=out.metadata)


@dg.asset(
    key=["scores", "commercial_value"], group_name="scoring", deps=[indicators],
    partitions_def=business_days, retry_policy=retry_policy, kinds={"duckdb"},
    description="Commercial-value score (0-1000), dimension scores, grade and negative-list verdict per firm; "
                "hits in scores.negative_hits (peer percentiles are computed when a report reads them).",
)
def commercial_value(context: dg.AssetExecutionContext, store: Store, catalogue: CatalogueFile,
                     progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    cat = catalogue.load()  # a bad catalogue stops here, before anything is replaced
    with store.connect() as con:
        s = build_scores(con, business_date(context), cat)
    progress.done("commercial_value", f"{s.firms:,} firms scored, {s.excluded:,} excluded by the negative list")
    return dg.MaterializeResult(metadata={
        "firms": s.firms, "excluded": s.excluded, "negative_hits": s.hits, "catalogue_version": s.catalogue_version,
        "catalogue_hash": s.catalogue_hash, "snapshot_id": s.snapshot_id})

"""Scaling the per-firm scoring out: the job `scale_out_scoring` computes indicators, negative-list
hits and scores on partitions of firms (districts, in `VALUECREDIT_FIRM_PARTITIONS` groups of similar
size, 4 by default), each partition a mapped step that reads the store only, so a multiprocess or
distributed executor runs them side by side; then one step loads every part. It writes the same tables as `features/indicators` and `scores/commercial_value` of the
nightly job, which do it in one step (tests/scoring/test_partitions.py compares the two). Bodies call
scoring.partitions."""

from pathlib import Path

import dagster as dg
from dagster._core.definitions.executor_definition import multiple_process_executor_requirements
from dagster._core.execution.retries import RetryMode
from dagster._core.execution.step_dependency_config import StepDependencyConfig

from pipelines.partitions import business_date, business_days, retry_policy
from pipelines.resources import CatalogueFile, PartsFolder, Store
from scoring.partitions import FirmPartition, compute_partition, merge_partitions, plan_partitions


@dg.op(ins={"after": dg.In(dg.Nothing)}, out=dg.DynamicOut(dict))
def plan_firm_partitions(context: dg.OpExecutionContext, store: Store, parts_folder: PartsFolder):
    """The districts in `parts_folder.partitions` groups of similar firm counts: one mapped step each."""
    as_of = business_date(context)
    with store.read() as con:
        partitions = plan_partitions(con, as_of, parts_folder.partitions)
    for p in partitions:
        yield dg.DynamicOutput({"name": p.name, "districts": list(p.districts)}, mapping_key=p.name)


@dg.op(retry_policy=retry_policy)
def score_firm_partition(context: dg.OpExecutionContext, store: Store, catalogue: CatalogueFile,
                         parts_folder: PartsFolder, partition: dict) -> dict:
    """A worker: one partition's indicators, hits and scores as Parquet; reads the store only."""
    as_of = business_date(context)
    with store.read() as con:
        rows = compute_partition(con, as_of, catalogue.load(),
                                 FirmPartition(partition["name"], tuple(partition["districts"])),
                                 Path(parts_folder.path) / as_of.isoformat())
    context.add_output_metadata(rows)
    return partition


@dg.op(out=dg.Out(dg.Nothing))
def merge_firm_partitions(context: dg.OpExecutionContext, store: Store, catalogue: CatalogueFile,
                          parts_folder: PartsFolder, partitions: list[dict]) -> None:
    """The single writer: every part into the store in one transaction."""
    as_of = business_date(context)
    with store.connect() as con:
        s = merge_partitions(con, as_of, catalogue.load(), Path(parts_folder.path) / as_of.isoformat(),
                             [FirmPartition(p["name"], tuple(p["districts"])) for p in sorted(partitions, key=lambda p: p["name"])])
    context.add_output_metadata({"firms": s.firms, "excluded": s.excluded, "negative_hits": s.hits,
                                 "partitions": len(partitions), "snapshot_id": s.snapshot_id})


@dg.graph_asset(
    key=["scores", "by_firm_partition"], group_name="scale_out", partitions_def=business_days,
    ins={"coverage": dg.AssetIn(["staging", "firm_coverage"], dagster_type=dg.Nothing)},
    description="features/indicators and scores/commercial_value computed on partitions of firms (groups of "
                "districts) in parallel steps that only read the store, then merged by one writer: "
                "the same tables as the nightly job's single step.",
)
def by_firm_partition(coverage):
    return merge_firm_partitions(plan_firm_partitions(coverage).map(score_firm_partition).collect())


class UnderStoreLock(dg.Executor):
    """The multiprocess executor, run while the run's orchestrating process holds the store's writer
    lock from the first step to the last; each step process's store resource joins it by run id."""

    def __init__(self, inner: dg.Executor) -> None:
        self.inner = inner

    @property
    def retries(self) -> RetryMode:
        return self.inner.retries

    @property
    def step_dependency_config(self) -> StepDependencyConfig:
        return self.inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        store = plan_context.job.get_definition().resource_defs["store"]
        config = (plan_context.run_config.get("resources") or {}).get("store")
        with dg.build_resources({"store": store}, instance=plan_context.instance, dagster_run=plan_context.dagster_run,
                                resource_config={"store": config} if config else None):
            yield from self.inner.execute(plan_context, execution_plan)


@dg.executor(name="multiprocess_under_store_lock", config_schema=dg.multiprocess_executor.config_schema,
             requirements=multiple_process_executor_requirements())
def multiprocess_under_store_lock(init_context: dg.InitExecutorContext) -> dg.Executor:
    return UnderStoreLock(dg.multiprocess_executor.executor_creation_fn(init_context))


scale_out_job = dg.define_asset_job(
    "scale_out_scoring", selection=dg.AssetSelection.assets(by_firm_partition),
    executor_def=multiprocess_under_store_lock,
    description="Indicators and scores on partitions of firms, in parallel processes, then merged by one writer.",
)

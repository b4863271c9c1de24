"""Firm coverage: per firm, which sources report on it and up to which period.

The first asset downstream of every source; it is what a failed contract check blocks.
"""


import dagster as dg

from data_contracts.contracts import CONTRACTS
from ingestion.coverage import build_firm_coverage
from pipelines.partitions import business_days
from pipelines.resources import ProgressReporter, Store


@dg.asset(
    key=["staging", "firm_coverage"],
    group_name="ingestion",
    deps=[dg.AssetKey(["staging", c.source]) for c in CONTRACTS],
    partitions_def=business_days,
    description="One row per registered firm: the last period each monthly source reports, and the months missing.",
    kinds={"duckdb"},
)
def firm_coverage(context: dg.AssetExecutionContext, store: Store,
                  progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
    with store.connect() as con:
        rows = build_firm_coverage(con)
    progress.done("firm_coverage", f"{rows:,} firms")
    return dg.MaterializeResult(metadata={"firms": rows})

"""One asset and one blocking contract check per department source.

Asset bodies only call `ingestion.ingest`; everything they do can be tested without Dagster.
"""



import dagster as dg

from data_contracts.contracts import CONTRACTS, Contract
from ingestion.ingest import check_source, ingest_source
from pipelines.partitions import business_date, business_days, retry_policy
from pipelines.resources import LandingZone, ProgressReporter, Store


def _source_asset(contract: Contract) -> dg.AssetsDefinition:
    deps = [dg.AssetKey(["staging", "registry"])] if contract.firm_column and contract.source != "registry" else []

    @dg.asset(
        key=["staging", contract.source],
        group_name="ingestion",
        deps=deps,
        partitions_def=business_days,
        retry_policy=retry_policy,
        description=f"{contract.department_zh}: {contract.description} Typed, de-duplicated, latest version per "
                    f"key ({', '.join(contract.key)}); bad rows in quarantine.rows.",
        kinds={"duckdb"},
    )
    def _asset(context: dg.AssetExecutionContext, store: Store, landing: LandingZone,
               progress: dg.ResourceParam[ProgressReporter]) -> dg.MaterializeResult:
        with store.connect() as con:
            out = ingest_source(con, landing.path, contract.source, business_date(context))
        progress.done(contract.source, f"{out.rows_loaded:,} rows loaded, "
                                       f"{sum(out.quarantined_by_rule.values()):,} quarantined, {len(out.rejected)} files rejected")
        return dg.MaterializeResult(metadata={
            "files": len(out.files), "rows_loaded": out.rows_loaded, "staged_rows": out.staged_rows,
            "quarantined_by_rule": out.quarantined_by_rule,
            "rejected_files": [f"{f.file}: {f.reason}" for f in out.rejected],
        })

    @dg.asset_check(asset=_asset, name="contract", blocking=True,
                    description=f"Data contract of {contract.source}: every file readable and matching the manifest, "
                                "quarantine rate within limit, keys unique, Great Expectations suite passes.")
    def _check(context: dg.AssetCheckExecutionContext, store: Store) -> dg.AssetCheckResult:
        with store.connect() as con:
            out = check_source(con, contract.source, business_date(context))
        return dg.AssetCheckResult(passed=out.passed, severity=dg.AssetCheckSeverity.ERROR,
                                   description=out.description, metadata=out.metadata)

    return _asset, _check


source_assets: list[dg.AssetsDefinition] = []
source_checks: list[dg.AssetChecksDefinition] = []
for _c in CONTRACTS:
    _a, _k = _source_asset(_c)
    source_assets.append(_a)
    source_checks.append(_k)

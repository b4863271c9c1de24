"""The Great Expectations (GX Core 1.x) suite of a contract, and its validation of a batch.

The suite is generated from the same contract as the SQL quarantine rules: it documents each
source for auditors and independently re-checks what ingestion staged.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

import pandas as pd

from data_contracts.contracts import Contract
from data_contracts.rules import PERIOD_PATTERN

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
logging.getLogger("great_expectations").setLevel(logging.ERROR)
USCC_PATTERN = r"^[0-9A-HJ-NP-RTUW-Y]{18}$"


@dataclass
class SuiteResult:
    success: bool
    evaluated: int
    failed: list[str]
    rows: int


def build_suite(contract: Contract):
    import great_expectations as gx
    import great_expectations.expectations as gxe

    suite = gx.ExpectationSuite(name=f"{contract.source}_contract")
    suite.add_expectation(gxe.ExpectTableColumnsToMatchSet(column_set=list(contract.column_names), exact_match=True))
    for col in contract.columns:
        if not col.nullable:
            suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=col.name))
        lo, hi = col.lower_bound, col.upper_bound
        if lo is not None or hi is not None:
            suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=col.name, min_value=lo, max_value=hi))
        if col.allowed:
            suite.add_expectation(gxe.ExpectColumnValuesToBeInSet(column=col.name, value_set=list(col.allowed)))
        if col.type == "uscc":
            suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column=col.name, regex=USCC_PATTERN))
        if col.type == "period":
            suite.add_expectation(gxe.ExpectColumnValuesToMatchRegex(column=col.name, regex=PERIOD_PATTERN))
    if len(contract.key) == 1:
        suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=contract.key[0]))
    else:
        suite.add_expectation(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(contract.key)))
    return suite


def validate_frame(contract: Contract, frame: pd.DataFrame) -> SuiteResult:
    """Run the contract's suite on a DataFrame."""
    batch_definition, suite = _validator(contract)
    result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    failed = []
    for r in result.results:
        if not r.success:
            cfg = r.expectation_config
            col = cfg.kwargs.get("column") or cfg.kwargs.get("column_list") or ""
            failed.append(f"{cfg.type}({col}): {r.result.get('unexpected_count', '')} unexpected")
    return SuiteResult(bool(result.success), len(result.results), failed, len(frame))


@functools.cache
def _validator(contract: Contract):
    """One ephemeral GX context for the process, and per contract its data asset and suite, made once:
    making them took most of a small source's check (26 sources: 12 s of a 32 s night of 800 firms)."""
    context = _context()
    source = context.data_sources.add_pandas(f"{contract.source}_source")
    batch_definition = source.add_dataframe_asset(contract.source).add_batch_definition_whole_dataframe("batch")
    return batch_definition, build_suite(contract)


@functools.cache
def _context():
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    try:
        context.variables.progress_bars = gx.data_context.types.base.ProgressBarsConfig(globally=False)
    except Exception:  # older 1.x releases: progress bars are only cosmetic
        pass
    return context

"""Business dates and retries shared by every asset."""

from datetime import date

import dagster as dg

# A partition is a business date: everything delivered by the end of that day (Asia/Shanghai).
# end_offset=1 lets an operator run today's date by hand; the schedule runs yesterday's at 02:00.
business_days = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="Asia/Shanghai", end_offset=1)

# Transient failures (a file still being copied, a lock held a moment too long) get two more tries.
retry_policy = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)


def business_date(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext | dg.OpExecutionContext) -> date:
    """The business date a step runs for: its partition (an asset) or its run's partition (a check)."""
    key = context.partition_key if getattr(context, "has_partition_key", False) else context.run.tags.get("dagster/partition")
    if key is None:
        raise ValueError("this step runs for one business date: launch it for a partition (YYYY-MM-DD)")
    return date.fromisoformat(key)

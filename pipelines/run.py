"""`valuecredit run`: materialise every asset for one business date, in one go, in process."""

import os
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from pipelines.definitions import all_assets, all_checks, resources
from pipelines.resources import ProgressReporter, SilentProgress
from valuecredit.ingest import quarantined_by_rule
from valuecredit.store import connect


@dataclass
class RunSummary:
    business_date: date
    succeeded: bool
    seconds: float
    failed_checks: dict[str, str] = field(default_factory=dict)
    blocked: list[str] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    db: str = ""


def run_nightly(business_date: date, landing: Path, db: Path, progress: ProgressReporter | None = None) -> RunSummary:
    started = time.perf_counter()
    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [*all_assets, *all_checks],
        partition_key=business_date.isoformat(),
        resources=resources(str(db), str(landing), progress or SilentProgress()),
        instance=instance,
        raise_on_error=False,
        tags={"valuecredit/trigger": "cli"},
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    failed = {}
    for ev in result.get_asset_check_evaluations():
        if not ev.passed:
            failed["/".join(ev.asset_key.path) + ":" + ev.check_name] = ev.description or "failed"
    materialised = {"/".join(e.asset_key.path) for e in result.get_asset_materialization_events()}
    blocked = sorted("/".join(k.path) for a in all_assets for k in a.keys if "/".join(k.path) not in materialised)
    con = connect(db, read_only=True)
    try:
        tables = con.execute("""SELECT table_schema || '.' || table_name FROM information_schema.tables
                                WHERE table_schema IN ('staging', 'quarantine', 'features', 'scores', 'ledger') ORDER BY 1""").fetchall()
        rows = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for (t,) in tables}
        quarantined = quarantined_by_rule(con, business_date)
    finally:
        con.close()
    return RunSummary(business_date, result.success and not failed and not blocked,
                      round(time.perf_counter() - started, 1), failed, blocked, rows, quarantined, str(db))

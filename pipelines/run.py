"""`valuecredit run`: materialise every asset for one business date, in one go, in process."""

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb

from ingestion.ingest import quarantined_by_rule
from models.registry import champion, last_decision
from pipelines.definitions import (
    all_checks,
    nightly_assets,
)
from pipelines.resources import ProgressReporter, SilentProgress, resources
from pipelines.scoring import FULL_NIGHT_TAG
from valuecredit.sqltext import message_lines
from valuecredit.store import connect, table_rows, writer_lock


@dataclass
class RunSummary:
    business_date: date
    succeeded: bool
    seconds: float
    failed_checks: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)  # step -> why it failed
    trained: str = ""
    model_decision: str = ""  # why the first model was promoted, or not
    blocked: list[str] = field(default_factory=list)
    table_rows: dict[str, int] = field(default_factory=dict)
    quarantined_by_rule: dict[str, int] = field(default_factory=dict)
    db: str = ""


def _innermost(error):
    """The error at the bottom of a failure's chain: what the user can act on (not "exceeded max retries")."""
    while error.cause is not None:
        error = error.cause
    return error


def _why(error) -> str:
    """A step's failure in one line. Of a DuckDB error, its first line ("Binder Error: ..."), not the
    `LINE n:` and caret lines after it that point into the SQL; of any other, its last line."""
    error = _innermost(error)
    lines = [line for line in error.message.strip().splitlines() if line.strip()] or [error.cls_name]
    kind = getattr(duckdb, error.cls_name, None)
    if not (isinstance(kind, type) and issubclass(kind, duckdb.Error)):
        return lines[-1]
    first = next(iter(message_lines(error.message)), lines[0])
    return re.sub(rf"^[\w.]*{error.cls_name}: ", "", first)


INSTANCE_SETTINGS = Path(__file__).resolve().parents[1] / "dagster.yaml"


def recorded_in(db: Path) -> dg.DagsterInstance:
    """The Dagster instance every night is recorded in, however it was launched: $DAGSTER_HOME, else
    `dagster_home/` beside the store (for the default store `data/dagster_home`, the one `make dev`
    shows), with the project's instance settings. The UI then shows the CLI's nights: their
    materialisations by business date, their checks and their run history."""
    home = Path(os.environ.get("DAGSTER_HOME") or Path(db).parent / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        shutil.copy(INSTANCE_SETTINGS, home / "dagster.yaml")
    return dg.DagsterInstance.from_config(str(home))


def run_nightly(business_date: date, landing: Path, db: Path, progress: ProgressReporter | None = None,
                full: str = "") -> RunSummary:
    """`full`: why every firm must be computed again tonight (empty: only what changed, when the
    previous night allows; see scoring.changes). The night holds the store's writer lock
    from its first materialisation to its last (joining the lock `valuecredit run` holds)."""
    with writer_lock(db, join=True):
        return _night(business_date, landing, db, progress, full)


def _night(business_date: date, landing: Path, db: Path, progress: ProgressReporter | None, full: str) -> RunSummary:
    started = time.perf_counter()
    # a store in a folder not made yet: DuckDB cannot create it, and the resource would retry for minutes
    Path(db).parent.mkdir(parents=True, exist_ok=True)
    instance = recorded_in(db)
    res = resources(str(db), str(landing), progress or SilentProgress())
    registry = Path(res["registry"].path)
    tags = {"valuecredit/trigger": "cli", **({FULL_NIGHT_TAG: full} if full else {})}
    common = dict(resources=res, instance=instance, raise_on_error=False, tags=tags,
                  run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}})

    had_model = champion(registry) is not None
    result = dg.materialize([*nightly_assets, *all_checks], partition_key=business_date.isoformat(), **common)
    # the night's own account of the PD model (a first champion trained, or why there is none) and of
    # what it therefore did not do, from the assets' metadata
    meta = {"/".join(e.asset_key.path): e.materialization.metadata for e in result.get_asset_materialization_events()}
    pd_meta = meta.get("scores/pd", {})
    # a champion now and none before: tonight trained and promoted it (told even if scoring then failed)
    trained = "" if had_model else champion(registry) or ""
    decision = (pd_meta["first_model_decision"].value if "first_model_decision" in pd_meta
                else (last_decision(registry) or {}).get("reason", "") if trained else "")
    failed, warnings = {}, {}
    if "no_model" in pd_meta:
        warnings["scores/pd"] = f"no PD model yet: {pd_meta['no_model'].value}"
    errors = {ev.step_key: _why(ev.event_specific_data.error) for ev in result.get_step_failure_events()}
    if "first_model_error" in pd_meta:  # the decisions went out on the score; the run still fails
        errors["scores/pd"] = pd_meta["first_model_error"].value
    for ev in result.get_asset_check_evaluations():
        if not ev.passed:
            into = warnings if ev.severity == dg.AssetCheckSeverity.WARN else failed
            into["/".join(ev.asset_key.path) + ":" + ev.check_name] = ev.description or "failed"
    blocked = sorted(name for a in nightly_assets for k in a.keys if (name := "/".join(k.path)) not in meta)
    con = connect(db, read_only=True)
    try:
        rows = table_rows(con, ("staging", "quarantine", "features", "scores", "decisions", "ledger"), business_date)
        quarantined = quarantined_by_rule(con, business_date)
    finally:
        con.close()
    return RunSummary(business_date, result.success and not failed and not blocked and not errors,
                      round(time.perf_counter() - started, 1), failed, warnings, errors, trained, decision, blocked, rows,
                      quarantined, str(db))

"""What changed since the previous night: the firms an incremental night computes again.

A firm's indicators, negative-list hits and PD inputs rest on its own rows as known on the date, on
the date through the windows of `sql.WINDOWS`, the month and each source's current period, and on
the catalogue. Between the previous date computed, P, and this date, D, they can differ only for
- a firm with a row delivered, or retired by a newer delivery, in (P, D]           (its data), or
- a firm with a row entering or leaving one of the windows in (P, D]              (the calendar);
and they can differ for every firm when
- D falls in another month than P (the monthly panels read a data month fixed by the date's month),
- a source's current period moved (every firm's 12- and 24-month windows shift),
- the data as known on P changed after P was computed (a late file: P's snapshot no longer matches),
- the code that computes a firm's rows changed (a new release: P's rows came from the old code),
- there is no previous date, or the operator asked for a full night.
In the first two cases the night is incremental: those firms are computed again and every other
firm's rows are carried forward from P; otherwise it is full. Years in operation move every day:
carried rows get theirs anew. What is computed over all firms together (scores from indicators,
eligibility) is computed again over all firms, by design.

The stages after the indicators (`STAGES`: the negative-list hits, the PDs) carry P's rows only
when P's plan records that stage as computed, after P's indicators, with what computes it tonight
(the catalogue; the model, catalogue and reason codes) and P's rows are there. Otherwise (P had no
PD model, its night stopped before the stage, the model changed, the rows are gone) that stage is
computed for every firm, and `meta.night_plans` says why, as it does for the night.
`tests/scoring/test_incremental.py` and `tests/end_to_end/test_week_of_nights.py` show that incremental nights give
the tables of full ones."""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from data_contracts.contracts import CONTRACTS
from scoring.sql import WINDOWS, PointInTime
from valuecredit.ranges import table_kind
from valuecredit.schema import CARRYING_STAGES, STAGE_COLUMNS, ensure
from valuecredit.sqltext import SQL, lit, q

# the monthly sources whose current period every firm's windows are measured from
WINDOWED = ("tax_monthly", "social_insurance", "power", "customs")

# the stages that carry the previous date's rows, each with the tables it carries from
STAGES = {"hits": ("scores.negative_hits", "scores.commercial_value"),
          "pd": ("features.pd_inputs", "scores.pd", "scores.explanations")}

assert tuple(STAGES) == CARRYING_STAGES  # the columns of meta.night_plans


@dataclass(frozen=True)
class NightPlan:
    as_of: date
    previous: date | None  # the date unchanged firms' rows are carried from
    full_reason: str  # why every firm is computed again; empty for an incremental night
    changed: int  # firms computed again (every firm on a full night)
    firms: int  # firms on the register on the date

    @property
    def incremental(self) -> bool:
        return not self.full_reason

    def changed_firms(self) -> SQL:
        """The firms computed again, as the (uscc, as_of) relation the scoring SQL takes."""
        return (f"(SELECT uscc, DATE {lit(self.as_of.isoformat())} AS as_of FROM meta.changed_firms "
                f"WHERE as_of = DATE {lit(self.as_of.isoformat())})")

    def carried(self, table: SQL, firm: str = "uscc") -> SQL:
        """`table`'s rows on the previous date for the firms carried forward (on the register, unchanged)."""
        d, p = lit(self.as_of.isoformat()), lit(str(self.previous))
        return (f"(SELECT * FROM {table} WHERE as_of = DATE {p} AND {q(firm)} IN ("
                f"SELECT uscc FROM {PointInTime('', self.as_of).rows('registry')} "
                f"EXCEPT SELECT uscc FROM meta.changed_firms WHERE as_of = DATE {d}))")


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    ensure(con, "meta.night_plans", "meta.changed_firms")
    # a store planned before the stages were recorded gains their columns (NULL: nothing to carry)
    have = {c for (c,) in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'meta' "
                                      "AND table_name = 'night_plans'").fetchall()}
    for column in STAGE_COLUMNS:
        if column not in have:
            con.execute(f"ALTER TABLE meta.night_plans ADD COLUMN {q(column)} VARCHAR")


def plan_night(con: duckdb.DuckDBPyConnection, as_of: date, full: str = "") -> NightPlan:
    """Decide the night (and record it, with its changed firms, in meta): run inside the caller's
    transaction, before the date's indicators are replaced. `full`: the operator's reason for a full night."""
    ensure_tables(con)
    previous = con.execute("SELECT max(as_of) FROM features.indicators WHERE as_of < ?", [as_of]).fetchone()[0]
    reason = full or full_night_reason(con, as_of, previous)
    d = f"DATE {lit(as_of.isoformat())}"
    registered = f"(SELECT DISTINCT uscc FROM {PointInTime('', as_of).rows('registry')})"
    con.execute("DELETE FROM meta.changed_firms WHERE as_of = ?", [as_of])
    n_firms = con.execute(f"SELECT count(*) FROM {registered}").fetchone()[0]
    n_changed = n_firms  # a full night lists no firms: every one is computed again
    if not reason:
        con.execute(f"INSERT INTO meta.changed_firms SELECT {d}, uscc FROM ({changed_firms_sql(previous, as_of)} "
                    f"INTERSECT SELECT uscc FROM {registered}) ORDER BY uscc")
        n_changed = con.execute("SELECT count(*) FROM meta.changed_firms WHERE as_of = ?", [as_of]).fetchone()[0]
    # a new plan for the date forgets what its stages were computed with: their rows rest on the old indicators
    con.execute(f"INSERT OR REPLACE INTO meta.night_plans (as_of, previous, full_reason, changed, firms, code, "
                f"{', '.join(q(c) for c in STAGE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?{', NULL' * len(STAGE_COLUMNS)})",
                [as_of, previous, reason, n_changed, n_firms, code_hash()])
    return NightPlan(as_of, previous, reason, n_changed, n_firms)


def has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return table_kind(con, table) is not None


def night_plan(con: duckdb.DuckDBPyConnection, as_of: date) -> NightPlan | None:
    """The plan the date's indicators were computed under (None before any); reads only."""
    if not has_table(con, "meta.night_plans"):
        return None
    row = con.execute("SELECT previous, full_reason, changed, firms FROM meta.night_plans WHERE as_of = ?",
                      [as_of]).fetchone()
    return NightPlan(as_of, *row) if row else None


def stage_plan(con: duckdb.DuckDBPyConnection, as_of: date, stage: str, made_with: str) -> tuple[NightPlan | None, str]:
    """The date's plan for `stage` (one of `STAGES`), computed with `made_with`: the plan, when the stage
    may carry the previous date's rows, or None and why it computes every firm. Nothing from the
    previous date is assumed: not its tables, nor that it ran the stage, nor with the same inputs."""
    ensure_tables(con)
    plan = night_plan(con, as_of)
    if plan is None:
        return None, f"no night plan for {as_of} (its indicators were not computed by this release)"
    if not plan.incremental:
        return None, plan.full_reason
    p = plan.previous
    then = con.execute(f"SELECT {q(stage + '_made_with')} FROM meta.night_plans WHERE as_of = ?", [p]).fetchone()
    if then is None or then[0] is None:
        return None, f"{stage}: not computed for {p} after its indicators (none then, or its night stopped before)"
    if then[0] != made_with:
        return None, f"{stage}: {p} was computed with {then[0]}, tonight with {made_with}"
    for table in STAGES[stage]:
        if not has_table(con, table) or not con.execute(f"SELECT count(*) > 0 FROM {table} WHERE as_of = ?",
                                                        [p]).fetchone()[0]:
            return None, f"{stage}: {table} holds no rows for {p}"
    return plan, ""


def record_stage(con: duckdb.DuckDBPyConnection, as_of: date, stage: str, made_with: str, full_reason: str) -> None:
    """What computed the date's `stage` rows and why every firm was (empty: carried); in the stage's transaction."""
    ensure_tables(con)
    con.execute(f"UPDATE meta.night_plans SET {q(stage + '_made_with')} = ?, {q(stage + '_full_reason')} = ? "
                "WHERE as_of = ?", [made_with, full_reason, as_of])


def data_snapshot(con: duckdb.DuckDBPyConnection, as_of: date) -> tuple[str, int]:
    """The data a date's scores rest on: a hash of every file loaded and delivered by that date."""
    files = con.execute("""SELECT source, file, sha256 FROM meta.ingested_files
                           WHERE status = 'loaded' AND delivered_on <= ? ORDER BY source, file, sha256""",
                        [as_of]).fetchall()
    digest = hashlib.sha256("\n".join("\t".join(f) for f in files).encode()).hexdigest()
    return digest, len(files)


def full_night_reason(con: duckdb.DuckDBPyConnection, as_of: date, previous: date | None) -> str:
    if previous is None:
        return "no earlier date computed"
    then = con.execute("SELECT code FROM meta.night_plans WHERE as_of = ?", [previous]).fetchone()
    if then is None or then[0] != code_hash():
        return f"the code that computes a firm's rows is not the code that computed {previous}"
    if (previous.year, previous.month) != (as_of.year, as_of.month):
        return f"a new month since {previous} (the monthly panels read a data month fixed by the date's month)"
    for source in WINDOWED:
        then, now = (con.execute(f"SELECT cur FROM {PointInTime('', d).current_period(source)}").fetchone()
                     for d in (previous, as_of))
        if then != now:
            return f"{source}: a new current period since {previous}"
    stored = con.execute("SELECT snapshot_id FROM meta.snapshots WHERE as_of = ?", [previous]).fetchone()
    if stored is None or stored[0] != data_snapshot(con, previous)[0]:
        return f"the data as known on {previous} changed after it was computed (a file delivered then, loaded later)"
    return ""


# the modules whose SQL makes a firm's indicators, negative-list hits and PD inputs
ROW_CODE = ("scoring.sql", "models.features")


def code_hash() -> str:
    """A digest of the code behind a firm's rows: rows computed by other code are never carried."""
    return modules_digest(ROW_CODE)[:16]


def modules_digest(modules: tuple[str, ...]) -> str:
    """The SHA-256 of the modules' source files, in the order given: what results computed by them rest on."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(Path(importlib.util.find_spec(module).origin).read_bytes())
    return digest.hexdigest()


def turned_sql(source: str, condition: SQL, previous: date, as_of: date, firm: str = "uscc") -> str:
    """Firms with a row of `source` for which `condition` (a template in `{d}`) differs between the dates."""
    p, d = (f"DATE {lit(x.isoformat())}" for x in (previous, as_of))
    return (f"SELECT {q(firm)} AS uscc FROM raw.{q(source)} WHERE _delivered_on <= {d} "
            f"AND ({condition.format(d=p)}) IS DISTINCT FROM ({condition.format(d=d)})")


def changed_firms_sql(previous: date, as_of: date) -> str:
    """Every firm with a row delivered or retired in (previous, as_of], or a row turning in a window."""
    p, d = (f"DATE {lit(x.isoformat())}" for x in (previous, as_of))

    def moved(row: SQL) -> SQL:
        return (f"({row}._delivered_on > {p} AND {row}._delivered_on <= {d}) "
                f"OR ({row}._valid_to > {p} AND {row}._valid_to <= {d})")

    parts = [f"SELECT uscc FROM raw.{q(c.source)} r WHERE {moved('r')}" for c in CONTRACTS if "uscc" in c.column_names]
    # loan statuses are keyed by loan: reach the firm through the loan
    parts.append(f"SELECT l.uscc FROM raw.loan_status s JOIN raw.loans l USING (loan_id) WHERE {moved('s')}")
    for source, conditions in WINDOWS.items():
        parts += [turned_sql(source, c, previous, as_of) for c in conditions]
    return "(" + "\nUNION\n".join(parts) + ")"

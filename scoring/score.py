"""Indicators, points, the commercial-value score and the negative list per date; peer percentiles when read.

Every table is keyed by (uscc, as_of); rebuilding a date replaces that date's rows in one
transaction, so a rerun is idempotent and readers never see half a date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from scoring.catalogue import Catalogue, Indicator
from scoring.changes import NightPlan, data_snapshot, has_table, plan_night, record_stage, stage_plan, turned_sql
from scoring.sql import (
    INDICATOR_KEYS,
    INDICATOR_TYPES,
    PointInTime,
    indicators_sql,
    major_penalty_window,
    negative_hits_sql,
    years_in_operation,
)
from valuecredit.ranges import nights_held, table_kind, write_night
from valuecredit.schema import ensure
from valuecredit.sqltext import SQL, lit, q
from valuecredit.store import replace_date, transaction
from valuecredit.transactions import atomically

TABLES = ("meta.snapshots", "features.indicators", "scores.negative_hits", "scores.peer_groups")


@dataclass
class ScoreSummary:
    as_of: date
    firms: int
    excluded: int
    hits: int
    snapshot_id: str
    catalogue_version: int
    catalogue_hash: str


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    ensure(con, *TABLES)
    if _percentiles_stored(con):
        with atomically(con):
            _keep_peer_groups_of_stored_percentiles(con)


def _percentiles_stored(con: duckdb.DuckDBPyConnection) -> bool:
    """The percentiles an earlier version stored are still in place: not yet moved (`ensure_tables`)."""
    return table_kind(con, "scores.peer_percentiles") == "BASE TABLE"


def _keep_peer_groups_of_stored_percentiles(con: duckdb.DuckDBPyConnection) -> None:
    """An earlier version stored the percentiles, a copy per night. The peer groups each night ranked
    by are kept from it, so that its nights' percentiles are given again as the banks were shown
    them (a registry file delivered before a night but loaded after it changes no past night), and
    the table itself is kept as it was under another name, no longer written."""
    held = set(nights_held(con, "scores.peer_groups"))
    for (night,) in con.execute("SELECT DISTINCT CAST(as_of AS DATE) FROM scores.peer_percentiles ORDER BY 1").fetchall():
        if night not in held:
            write_night(con, "scores.peer_groups", night, "SELECT uscc, as_of, industry, size_class FROM scores.peer_percentiles "
                                                          f"WHERE CAST(as_of AS DATE) = DATE {lit(night.isoformat())}")
    con.execute("ALTER TABLE scores.peer_percentiles RENAME TO peer_percentiles_v1")


def firms_as_of(as_of: date) -> SQL:
    """Every firm on the register as it was known on the date: the population scored."""
    return f"(SELECT DISTINCT uscc, DATE {lit(as_of.isoformat())} AS as_of FROM {PointInTime('', as_of).rows('registry')})"


def points_sql(ind: Indicator) -> str:
    """Points for one indicator's value column; a missing value earns the neutral points."""
    v, t, m = q(ind.key), ind.transform, float(ind.missing_points)
    if t.type == "categories":
        whens = " ".join(f"WHEN {lit(c)} THEN {float(p)!r}" for c, p in t.categories.items())
        return f"coalesce(CASE {v} {whens} END, {m!r})"
    if t.type == "linear":
        share = f"greatest(least(({v} - {float(t.lo)!r}) / {float(t.hi - t.lo)!r}, 1.0), 0.0)"
        scaled = f"100.0 * {share}" if ind.direction == "higher" else f"100.0 * (1.0 - {share})"
        return f"CASE WHEN {v} IS NULL THEN {m!r} ELSE {scaled} END"
    whens = " ".join(f"WHEN {v} >= {float(e)!r} THEN {float(p)!r}" for e, p in reversed(list(zip(t.edges, t.points[1:]))))
    return f"CASE WHEN {v} IS NULL THEN {m!r} {whens} ELSE {float(t.points[0])!r} END"


def missing_sql(ind: Indicator) -> str:
    """True when the indicator earned neutral points for lack of data (or an unknown category)."""
    if ind.transform.type == "categories":
        known = ", ".join(lit(c) for c in ind.transform.categories)
        return f"({q(ind.key)} IS NULL OR {q(ind.key)} NOT IN ({known}))"
    return f"({q(ind.key)} IS NULL)"


def score_select_sql(cat: Catalogue, indicators: SQL, hits: SQL) -> str:
    """Dimension scores, total, grade and verdict from an indicators relation and a hits relation."""
    pts = {i.key: points_sql(i) for i in cat.indicators}
    dims = []
    for d in cat.dimensions:
        members = [i for i in cat.indicators if i.dimension == d.key]
        s = sum(i.weight for i in members)
        weighted = " + ".join(f"{float(i.weight / s)!r} * {q('pts_' + i.key)}" for i in members)
        dims.append(f"({weighted}) AS {q(d.key)}")
    total = " + ".join(f"{float(10.0 * d.weight)!r} * {q(d.key)}" for d in cat.dimensions)
    grade = " ".join(f"WHEN total >= {float(lowest)!r} THEN {lit(g)}" for g, lowest in cat.grades)
    missing = ", ".join(f"CASE WHEN {missing_sql(i)} THEN {lit(i.key)} END" for i in cat.indicators)
    return f"""
        SELECT uscc, as_of, {", ".join(q(d.key) for d in cat.dimensions)}, round(total, 4) AS total,
               CASE {grade} END AS grade, coalesce(h.n, 0) > 0 AS excluded, coalesce(h.n, 0) AS hits,
               coalesce(h.rules, '') AS hit_rules, missing,
               {", ".join(f"pts_{k}" for k in INDICATOR_KEYS)},
               {int(cat.version)} AS catalogue_version, {lit(cat.content_hash)} AS catalogue_hash, snapshot_id
        FROM (
            SELECT *, {total} AS total FROM (
                SELECT *, {", ".join(dims)} FROM (
                    SELECT uscc, as_of, snapshot_id, {", ".join(f"{pts[k]} AS pts_{k}" for k in INDICATOR_KEYS)},
                           list_filter([{missing}], lambda x: x IS NOT NULL) AS missing
                    FROM {indicators})))
        LEFT JOIN (SELECT uscc, as_of, count(*) AS n, string_agg(DISTINCT rule_id, ',' ORDER BY rule_id) AS rules
                   FROM {hits} GROUP BY ALL) h USING (uscc, as_of)
        ORDER BY uscc"""


def build_indicators(con: duckdb.DuckDBPyConnection, as_of: date, full: str = "") -> int:
    """The date's indicators: of the firms that changed since the previous date, the others carried
    forward (`changes.plan_night`); of every firm on a full night or when `full` gives a reason."""
    ensure_tables(con)
    snapshot, files = data_snapshot(con, as_of)
    with transaction(con):
        # the plan first, against the previous snapshot; then this date's
        plan = plan_night(con, as_of, full)
        con.execute("INSERT OR REPLACE INTO meta.snapshots VALUES (?, ?, ?)", [as_of, snapshot, files])
        replace_date(con, "features.indicators", as_of, indicators_of_night(plan, snapshot))
    return con.execute("SELECT count(*) FROM features.indicators WHERE as_of = ?", [as_of]).fetchone()[0]


def indicators_of_night(plan: NightPlan, snapshot: str) -> SQL:
    """The date's indicator rows under the plan, in uscc order."""
    if not plan.incremental:
        return (f"SELECT *, {lit(snapshot)} AS snapshot_id FROM ({indicators_sql(firms_as_of(plan.as_of), plan.as_of)}) "
                "ORDER BY uscc")
    d = f"DATE {lit(plan.as_of.isoformat())}"
    registry = PointInTime("", plan.as_of).rows("registry")
    return f"""
        SELECT *, {lit(snapshot)} AS snapshot_id FROM ({indicators_sql(plan.changed_firms(), plan.as_of, restrict=True)})
        UNION ALL
        SELECT i.* REPLACE ({d} AS as_of, r.years AS years_in_operation, {lit(snapshot)} AS snapshot_id)
        FROM {plan.carried("features.indicators")} i
        JOIN (SELECT uscc, {years_in_operation()} AS years FROM {registry}) r USING (uscc)
        ORDER BY uscc"""


def hits_made_with(cat: Catalogue) -> str:
    """What a date's negative-list hits rest on besides the firms' rows: carried only where this is the same."""
    return f"catalogue {cat.content_hash}"


def hits_of_night_sql(plan: NightPlan | None, as_of: date, cat: Catalogue) -> SQL:
    """The date's negative-list hits: every firm's when `plan` is None (see `changes.stage_plan`: the
    previous date's hits were not computed under this catalogue), else carried forward for the firms
    the plan carries whose major penalties did not turn."""
    order = "ORDER BY uscc, rule_id, evidence_date, detail"
    if plan is None:
        return f"SELECT * FROM ({negative_hits_sql(firms_as_of(as_of), cat.negative_rules, as_of)}) {order}"
    # a major penalty's window is the catalogue's: the firms whose penalties enter or leave it join the changed
    turned = [turned_sql("penalties", major_penalty_window(r.params["years"], "{d}"), plan.previous, as_of)
              for r in cat.negative_rules if r.enabled and r.rule == "major_penalty"]
    d = f"DATE {lit(as_of.isoformat())}"
    again = (f"(SELECT uscc, {d} AS as_of FROM ({' UNION '.join(['SELECT uscc FROM ' + plan.changed_firms(), *turned])}) "
             f"WHERE uscc IN (SELECT uscc FROM {firms_as_of(as_of)}))")
    return f"""
        SELECT * FROM ({negative_hits_sql(again, cat.negative_rules, as_of, restrict=True)})
        UNION ALL
        SELECT * REPLACE ({d} AS as_of) FROM {plan.carried("scores.negative_hits")} WHERE uscc NOT IN (SELECT uscc FROM {again})
        {order}"""


def build_scores(con: duckdb.DuckDBPyConnection, as_of: date, cat: Catalogue) -> ScoreSummary:
    """Score every firm with indicators on the date; record every negative-list hit."""
    ensure_tables(con)
    d = f"DATE {lit(as_of.isoformat())}"
    indicators = f"(SELECT * FROM features.indicators WHERE as_of = {d})"
    with transaction(con):
        plan, full_reason = stage_plan(con, as_of, "hits", hits_made_with(cat))
        replace_date(con, "scores.negative_hits", as_of, hits_of_night_sql(plan, as_of, cat))
        record_stage(con, as_of, "hits", hits_made_with(cat), full_reason)
        replace_scores(con, as_of, score_select_sql(cat, indicators, f"(SELECT * FROM scores.negative_hits WHERE as_of = {d})"))
    return summarise_scores(con, as_of, cat)


def replace_scores(con: duckdb.DuckDBPyConnection, as_of: date, select: SQL) -> None:
    """The date's scores from `select`, then its firms' peer groups (inside the caller's transaction)."""
    replace_date(con, "scores.commercial_value", as_of, select, create=True)
    replace_date(con, "scores.peer_groups", as_of, peer_groups_sql(as_of))


def peer_groups_sql(as_of: date) -> SQL:
    """Each firm with indicators on the date, with its industry and size class as the registry gives them then."""
    return f"""SELECT i.uscc, i.as_of, r.industry, r.size_class
               FROM features.indicators i JOIN {PointInTime('', as_of).rows('registry')} r USING (uscc)
               WHERE i.as_of = DATE {lit(as_of.isoformat())} ORDER BY i.uscc"""


def summarise_scores(con: duckdb.DuckDBPyConnection, as_of: date, cat: Catalogue) -> ScoreSummary:
    firms, excluded, snapshot = con.execute(
        "SELECT count(*), count(*) FILTER (excluded), any_value(snapshot_id) FROM scores.commercial_value WHERE as_of = ?",
        [as_of]).fetchone()
    hits = con.execute("SELECT count(*) FROM scores.negative_hits WHERE as_of = ?", [as_of]).fetchone()[0]
    return ScoreSummary(as_of, firms, excluded, hits, snapshot or "", cat.version, cat.content_hash)


def peer_percentiles_sql(as_of: date, firms: SQL) -> SQL:
    """Each numeric indicator's percent rank (0 = lowest value, 1 = highest) among the firms of the
    same industry and size class on the date, for the firms of `firms` (a relation with `uscc`); NULL
    where the firm's value is missing. Computed when read, over those firms' peer groups alone: a
    firm's percentile moves whenever any of its peers moves past it, so a stored copy would be a new
    row every night (docs/DESIGN.md, "Tables kept by validity range"). The indicators and the peer
    groups the night stored give any past date's percentiles again."""
    ranks = ", ".join(
        f"CASE WHEN {k} IS NOT NULL THEN percent_rank() OVER (PARTITION BY industry, size_class, {k} IS NULL "
        f"ORDER BY {k}) END AS {k}" for k in INDICATOR_KEYS if INDICATOR_TYPES[k] == "DOUBLE")
    return f"""
        WITH peers AS (SELECT i.*, g.industry, g.size_class
                       FROM features.indicators i JOIN scores.peer_groups g USING (uscc, as_of)
                       WHERE i.as_of = DATE {lit(as_of.isoformat())}),
             groups AS (SELECT DISTINCT industry, size_class FROM peers WHERE uscc IN (SELECT uscc FROM {firms}))
        SELECT * FROM (
            SELECT uscc, as_of, industry, size_class, {ranks}
            FROM peers p SEMI JOIN groups g
                ON p.industry IS NOT DISTINCT FROM g.industry AND p.size_class IS NOT DISTINCT FROM g.size_class)
        WHERE uscc IN (SELECT uscc FROM {firms}) ORDER BY uscc"""


def peer_percentiles_of(con: duckdb.DuckDBPyConnection, as_of: date, firms: SQL) -> SQL:
    """`peer_percentiles_sql`, or on a store of the version that stored the percentiles and has not
    moved them yet (no night since the upgrade, or one stopped before the move: `_percentiles_stored`,
    the condition the move itself keys on), the stored ones: a bank's report on such a store reads
    what its night published."""
    if not _percentiles_stored(con):
        return peer_percentiles_sql(as_of, firms)
    return (f"SELECT * FROM scores.peer_percentiles WHERE as_of = DATE {lit(as_of.isoformat())} "
            f"AND uscc IN (SELECT uscc FROM {firms}) ORDER BY uscc")


def latest_scored_date(con: duckdb.DuckDBPyConnection) -> date | None:
    """The last date scored (None before the first night)."""
    return (con.execute("SELECT max(as_of) FROM scores.commercial_value").fetchone()[0]
            if has_table(con, "scores.commercial_value") else None)

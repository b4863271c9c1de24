"""Nightly PD scoring: every firm's PD from the pinned champion, with its exact TreeSHAP explanation,
reason codes, global importance and population stability, all for one business date.

Tables, each keyed by (uscc, as_of) or as_of, a date replaced in one transaction:
- features.pd_inputs      the model's inputs per firm (what a replay must reproduce)
- scores.pd               PD, boosters' log-odds, base value, top reason codes, model version, snapshot
- scores.explanations     one row per firm and feature: its contribution to the log-odds and, for
                          contributions that raise the PD, its rank among them
- scores.pd_importance    mean absolute contribution per feature over the population
- scores.pd_stability     PSI of the PD and of every feature against the model's reference: every
                          firm on the night it was trained
- scores.reason_codes     code, feature, Chinese and English text
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import StrictStr, field_validator

from models.features import features_sql
from models.monitoring import psi, status
from models.registry import RegisteredModel, RegistryError, champion, load_model
from scoring.catalogue import Catalogue
from scoring.changes import NightPlan, has_table, record_stage, stage_plan
from scoring.score import firms_as_of
from valuecredit.configfile import ConfigError, NonBlank, Schema, Version, content_hash, validated
from valuecredit.schema import PD_TABLES, TOP_REASONS, ensure
from valuecredit.sqltext import lit, q, type_name
from valuecredit.store import replace_date, replace_date_with_frame, transaction

REASON_CODES = Path(__file__).resolve().parents[1] / "config" / "reason_codes.yaml"



class ScoringError(RuntimeError):
    """No model to score with, or a model the reason codes do not cover."""


class ReasonCodeError(ScoringError, ConfigError):
    """The reason-code file cannot be used as it is."""


@dataclass
class ReasonCodes:
    by_feature: dict[str, dict]
    content_hash: str


class _Reason(Schema):
    code: NonBlank
    zh: NonBlank
    en: NonBlank


class _ReasonCodesFile(Schema):
    """config/reason_codes.yaml: one code per model feature, each code used once."""

    version: Version | None = None
    codes: dict[StrictStr, _Reason]

    @field_validator("codes")
    @classmethod
    def _each_code_once(cls, codes: dict[str, _Reason]) -> dict[str, _Reason]:
        if not codes:
            raise ValueError("expected a mapping of feature to {code, zh, en}")
        seen: dict[str, str] = {}
        for feature, reason in codes.items():
            if reason.code in seen:
                raise ValueError(f"code {reason.code} is used by both {seen[reason.code]!r} and {feature!r}")
            seen[reason.code] = feature
        return codes


def load_reason_codes(path: Path = REASON_CODES) -> ReasonCodes:
    f, doc = validated(Path(path), _ReasonCodesFile, ReasonCodeError, "reason codes")
    return ReasonCodes({feature: reason.model_dump() for feature, reason in f.codes.items()}, content_hash(doc))


@dataclass
class PDSummary:
    as_of: date
    firms: int
    model_version: str
    mean_pd: float
    shifted: list[str]
    scored_again: int  # firms scored and explained tonight; the others kept the previous date's
    full_reason: str  # why every firm's inputs were computed tonight; empty when unchanged firms' were carried


def model_of_night(con: duckdb.DuckDBPyConnection, as_of: date) -> str | None:
    """The model version that scored the night; None when no PD was stored for it (no model decided)."""
    if not has_table(con, "scores.pd"):
        return None
    return con.execute("SELECT any_value(model_version) FROM scores.pd WHERE as_of = ?", [as_of]).fetchone()[0]


def pinned_model(registry: Path) -> RegisteredModel:
    version = champion(registry)
    if version is None:
        raise ScoringError(f"no champion model in {registry}: train one first (`valuecredit model train`)")
    try:
        return load_model(registry, version)
    except RegistryError as exc:
        raise ScoringError(str(exc)) from exc


def model_inputs(con: duckdb.DuckDBPyConnection, as_of: date, cat: Catalogue, from_stored: bool = True) -> pd.DataFrame:
    """Every registered firm's model inputs as of the date. Nightly, the indicators and negative-list
    hits already stored for the date are reused; a replay (`from_stored=False`) derives everything
    again from the raw deliveries as known on the date."""
    d = f"DATE {lit(as_of.isoformat())}"
    stored = dict(indicators=f"(SELECT * FROM features.indicators WHERE as_of = {d})",
                  hits=f"(SELECT uscc, as_of, rule_id FROM scores.negative_hits WHERE as_of = {d})") if from_stored else {}
    return con.execute(f"SELECT * FROM ({features_sql(firms_as_of(as_of), cat.negative_rules, as_of, **stored)}) "
                       f"ORDER BY uscc").df()


def explain(model: RegisteredModel, inputs: pd.DataFrame,
            codes: ReasonCodes) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """PD, log-odds, base value and the top reason codes per firm; the contribution matrix and the
    adverse ranks (`adverse_ranks`), sorted once for both the reasons and the explanations table."""
    features = model.metadata["features"]
    uncovered = [f for f in features if f not in codes.by_feature]
    if uncovered:
        raise ScoringError(f"model {model.version} uses features with no reason code: {', '.join(uncovered)}")
    contrib = model.contributions(inputs).to_numpy()
    base, phi = contrib[:, -1], contrib[:, :-1]
    log_odds = base + phi.sum(axis=1)
    out = pd.DataFrame({"uscc": inputs["uscc"].to_numpy(), "as_of": inputs["as_of"].to_numpy(),
                        "pd": model.pd(inputs), "log_odds": log_odds, "base_value": base})
    # reasons: the features that raise this firm's PD the most (a positive contribution), largest first
    ranks = adverse_ranks(phi)
    code_of = np.array([codes.by_feature[f]["code"] for f in features], dtype=object)
    for i in range(1, TOP_REASONS + 1):
        at = ranks == i
        out[f"reason_{i}"] = np.where(at.any(axis=1), code_of[at.argmax(axis=1)], None)
    return out, phi, ranks


def adverse_ranks(phi: np.ndarray) -> np.ndarray:
    """1 for the contribution that raises the PD most, 2 for the next, ...; 0 where it does not raise it."""
    order = np.argsort(-phi, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(1, phi.shape[1] + 1)[None, :], axis=1)
    return np.where(phi > 0, ranks, 0)


def explanations_table(usccs: np.ndarray, as_of: date, features: list[str], phi: np.ndarray,
                       ranks: np.ndarray) -> pa.Table:
    """The long table of contributions, built as dictionary-encoded columns (no per-row Python)."""
    n, f = phi.shape
    ranks = ranks.ravel()
    return pa.table({
        "uscc": pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(n, dtype=np.int32), f)), pa.array(usccs)),
        "as_of": pa.array(np.full(n * f, np.datetime64(as_of, "D"))),
        "feature": pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(f, dtype=np.int32), n)), pa.array(features)),
        "contribution": pa.array(phi.ravel()),
        "adverse_rank": pa.array(ranks.astype(np.int16), mask=ranks == 0),
    })


def importance(mean_abs: np.ndarray, features: list[str]) -> pd.DataFrame:
    total = mean_abs.sum() or 1.0
    out = pd.DataFrame({"feature": features, "mean_abs_contribution": mean_abs, "share": mean_abs / total})
    out["rank"] = out["mean_abs_contribution"].rank(ascending=False, method="first").astype(int)
    return out.sort_values("rank")


def mean_abs_contributions(con: duckdb.DuckDBPyConnection, as_of: date, features: list[str]) -> np.ndarray:
    """Per feature, the mean absolute contribution over the date's explanations. Summed as decimals,
    which add up exactly in any order: the same rows give the same bits however they were written."""
    rows = dict(con.execute("""SELECT feature, sum(CAST(abs(contribution) AS DECIMAL(38, 18)))::DOUBLE / count(*)
                               FROM scores.explanations WHERE as_of = ? GROUP BY feature""", [as_of]).fetchall())
    return np.array([rows.get(f, 0.0) for f in features], dtype=float)


def stability(model: RegisteredModel, inputs: pd.DataFrame, pds: np.ndarray) -> pd.DataFrame:
    refs = model.metadata.get("reference", {})
    rows = [("pd", psi(refs["pd"], pd.Series(pds)))] if "pd" in refs else []
    rows += [(f, psi(refs[f], inputs[f])) for f in model.metadata["features"] if f in refs]
    return pd.DataFrame({"item": [r[0] for r in rows], "psi": [r[1] for r in rows],
                         "status": [status(r[1]) for r in rows]})


def split_thresholds(model: RegisteredModel) -> dict[str, np.ndarray]:
    """The numerical split thresholds per feature of every booster the score adds up, sorted."""
    found: dict[int, set[float]] = {}

    def walk(node: dict) -> None:
        if "split_feature" in node:
            if node.get("decision_type") == "<=":
                found.setdefault(node["split_feature"], set()).add(float(node["threshold"]))
            walk(node["left_child"])
            walk(node["right_child"])

    for booster in model.boosters():
        for tree in booster.dump_model()["tree_info"]:
            walk(tree["tree_structure"])
    features = model.metadata["features"]
    return {features[i]: np.array(sorted(t)) for i, t in found.items()}


def same_decisions(model: RegisteredModel, before: pd.DataFrame, after: pd.DataFrame) -> np.ndarray:
    """Per row, whether the two inputs take the same branch at every split of every tree of every
    booster: then the score and its exact TreeSHAP contributions are the same, bit for bit."""
    same = np.ones(len(after), dtype=bool)
    thresholds = split_thresholds(model)
    b, a = model.frame(before), model.frame(after)
    for f in model.metadata["features"]:
        if f in model.metadata["categorical"]:
            x, y = b[f].astype("string").fillna("\0"), a[f].astype("string").fillna("\0")
            same &= (x.to_numpy() == y.to_numpy())
            continue
        x, y = b[f].to_numpy(dtype=float), a[f].to_numpy(dtype=float)
        t = thresholds.get(f, np.array([]))
        # x <= threshold goes left: the count of thresholds below x fixes every branch; a missing
        # value and zero (missing under zero_as_missing) keep their own branches
        same &= (np.searchsorted(t, x, side="left") == np.searchsorted(t, y, side="left"))
        same &= (np.isnan(x) == np.isnan(y)) & ((x == 0) == (y == 0))
    return same


def made_with(cat: Catalogue, model: RegisteredModel, codes: ReasonCodes) -> str:
    """What a date's PDs and explanations rest on besides its inputs: carried only where this is the same."""
    return f"model {model.version}, catalogue {cat.content_hash}, reason codes {codes.content_hash}"


def inputs_of_night(con: duckdb.DuckDBPyConnection, plan: NightPlan,
                    cat: Catalogue) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Every firm's inputs on the date, in uscc order: computed for the firms whose indicators or
    negative-list hits changed, carried from the plan's previous date for the others with this date's years in
    operation (the one input that moves by itself); which rows were carried; their previous years."""
    as_of = plan.as_of
    d, p = (f"DATE {lit(x.isoformat())}" for x in (as_of, plan.previous))
    hits = "SELECT uscc, count(*) AS n FROM scores.negative_hits WHERE as_of = {} GROUP BY uscc"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _again AS
        SELECT uscc, {d} AS as_of FROM (
            SELECT uscc FROM {plan.changed_firms()}
            UNION SELECT uscc FROM ({hits.format(d)}) h FULL JOIN ({hits.format(p)}) g USING (uscc)
                  WHERE h.n IS DISTINCT FROM g.n)
        WHERE uscc IN (SELECT uscc FROM features.indicators WHERE as_of = {d})""")
    mine = f"as_of = {d} AND uscc IN (SELECT uscc FROM _again)"
    sql = features_sql("_again", cat.negative_rules, as_of, f"(SELECT * FROM features.indicators WHERE {mine})",
                       f"(SELECT uscc, as_of, rule_id FROM scores.negative_hits WHERE {mine})", restrict=True)
    fresh = f"({sql})"
    types = con.execute(f"DESCRIBE SELECT * FROM {fresh}").fetchall()
    names = [name for name, *_ in types]
    cast = ", ".join(f"CAST(c.{q(name)} AS {type_name(kind)}) AS {q(name)}" for name, kind, *_ in types
                     if name not in ("uscc", "as_of", "years_in_operation"))
    frame = con.execute(f"""
        SELECT {", ".join(q(n) for n in names)}, false AS _carried, NULL::DOUBLE AS _years_before FROM {fresh}
        UNION ALL BY NAME
        SELECT c.uscc, {d} AS as_of, {cast}, i.years_in_operation, true AS _carried, c.years_in_operation AS _years_before
        FROM features.pd_inputs c JOIN features.indicators i ON i.uscc = c.uscc AND i.as_of = {d}
        WHERE c.as_of = {p} AND c.uscc NOT IN (SELECT uscc FROM _again)
        ORDER BY uscc""").df()
    con.execute("DROP TABLE _again")
    carried, before = frame.pop("_carried").to_numpy(dtype=bool), frame.pop("_years_before").to_numpy(dtype=float)
    return frame[names], carried, before


def score_pd(con: duckdb.DuckDBPyConnection, as_of: date, cat: Catalogue, model: RegisteredModel,
             codes: ReasonCodes) -> PDSummary:
    """Score, explain and monitor every firm for the date; replace the date's rows in one transaction.
    On an incremental night a firm whose inputs take the branches they took on the previous date
    keeps that date's PD and explanation (`same_decisions`); the others are scored again."""
    ensure(con, *PD_TABLES)
    plan, full_reason = stage_plan(con, as_of, "pd", made_with(cat, model, codes))
    if plan is None:
        inputs = model_inputs(con, as_of, cat)
        again = np.ones(len(inputs), dtype=bool)
    else:
        inputs, carried, years_before = inputs_of_night(con, plan, cat)
        again = ~carried
        yesterday = inputs.loc[carried].assign(years_in_operation=years_before[carried])
        again[np.flatnonzero(carried)[~same_decisions(model, yesterday, inputs.loc[carried])]] = True
    scored, phi, ranks = explain(model, inputs.loc[again].reset_index(drop=True), codes)
    snapshot = con.execute("SELECT snapshot_id FROM meta.snapshots WHERE as_of = ?", [as_of]).fetchall()
    snapshot_id = snapshot[0][0] if snapshot else None
    scored["model_version"] = model.version
    scored["snapshot_id"] = snapshot_id
    scored["catalogue_hash"] = cat.content_hash
    scored["reason_codes_hash"] = codes.content_hash
    features = model.metadata["features"]
    long = explanations_table(scored["uscc"].to_numpy(), as_of, features, phi, ranks)
    kept = pd.DataFrame({"uscc": inputs.loc[~again, "uscc"].to_numpy()})
    code_rows = pd.DataFrame([{"code": e["code"], "feature": f, "zh": e["zh"], "en": e["en"],
                               "reason_codes_hash": codes.content_hash} for f, e in codes.by_feature.items()])
    d = f"DATE {lit(as_of.isoformat())}"
    with transaction(con):
        replace_date_with_frame(con, "features.pd_inputs", as_of, inputs, create=True)
        con.register("_kept", kept)
        con.register("_scored", scored)
        con.register("_explained", long)
        # the firms that keep the previous date's PD and explanation: their rows are the previous
        # date's ranges, which the night's write leaves as they are
        stamp = lit(snapshot_id) if snapshot_id is not None else "NULL"
        kept_pds = kept_explanations = ""
        if len(kept):
            yesterdays = f"WHERE as_of = DATE {lit(plan.previous.isoformat())} AND uscc IN (SELECT uscc FROM _kept)"
            kept_pds = f" UNION ALL BY NAME SELECT * REPLACE ({d} AS as_of, {stamp} AS snapshot_id) FROM scores.pd {yesterdays}"
            kept_explanations = f" UNION ALL BY NAME SELECT * REPLACE ({d} AS as_of) FROM scores.explanations {yesterdays}"
        replace_date(con, "scores.pd", as_of, f"SELECT * FROM _scored{kept_pds}")
        replace_date(con, "scores.explanations", as_of, f"SELECT * FROM _explained{kept_explanations}")
        for name in ("_explained", "_scored", "_kept"):
            con.unregister(name)
        pds = con.execute("SELECT pd FROM scores.pd WHERE as_of = ? ORDER BY uscc", [as_of]).fetchnumpy()["pd"]
        ranked = importance(mean_abs_contributions(con, as_of, features), features).assign(
            as_of=as_of, model_version=model.version)
        drift = stability(model, inputs, pds).assign(as_of=as_of, model_version=model.version)
        replace_date_with_frame(con, "scores.pd_importance", as_of, ranked)
        replace_date_with_frame(con, "scores.pd_stability", as_of, drift)
        con.execute("DELETE FROM scores.reason_codes WHERE reason_codes_hash = ?", [codes.content_hash])
        con.register("_codes", code_rows)
        con.execute("INSERT INTO scores.reason_codes BY NAME SELECT * FROM _codes")
        con.unregister("_codes")
        record_stage(con, as_of, "pd", made_with(cat, model, codes), full_reason)
    shifted = drift.loc[drift["status"] == "shift", "item"].tolist()
    return PDSummary(as_of, len(inputs), model.version, float(pds.mean()) if len(pds) else 0.0, shifted, int(again.sum()),
                     full_reason)


@dataclass
class ReplayResult:
    as_of: date
    model_version: str
    firms: int
    pd_identical: bool
    explanations_identical: bool
    max_pd_difference: float


def replay(con: duckdb.DuckDBPyConnection, as_of: date, cat: Catalogue, registry: Path) -> ReplayResult:
    """Score a past date again from the raw deliveries as known then, with the model version that
    date recorded, and compare with what was stored, bit for bit."""
    stored = con.execute("SELECT * FROM scores.pd WHERE as_of = ? ORDER BY uscc", [as_of]).df()
    if stored.empty:
        raise ScoringError(f"no PDs stored for {as_of}: nothing to replay")
    versions = stored["model_version"].unique().tolist()
    model = load_model(registry, versions[0])
    inputs = model_inputs(con, as_of, cat, from_stored=False)
    again, phi, _ = explain(model, inputs, load_reason_codes())
    same_firms = again["uscc"].tolist() == stored["uscc"].tolist()
    pd_identical = same_firms and np.array_equal(again["pd"].to_numpy(), stored["pd"].to_numpy())
    stored_phi = con.execute("""SELECT contribution FROM scores.explanations WHERE as_of = ?
                                ORDER BY uscc, feature""", [as_of]).fetchnumpy()["contribution"]
    features = model.metadata["features"]
    mine = phi[:, np.argsort(features)].ravel() if same_firms else np.array([])
    diff = float(np.max(np.abs(again["pd"].to_numpy() - stored["pd"].to_numpy()))) if same_firms and len(stored) else float("inf")
    return ReplayResult(as_of, model.version, len(stored), pd_identical,
                        same_firms and np.array_equal(mine, stored_phi), diff)

"""Sample testing: fit the catalogue's weights to observed loan outcomes, within the operator's bounds.

The sample is every programme loan whose 12-month outcome window has closed, with its indicators
as of its disbursement date (point in time). The score is linear in the indicator points,
total = sum_i c_i x points_i with sum_i c_i = 10, so fitting the weights is a logistic regression of
default on the total with the c_i constrained: non-negative, within [low, high] x the expert value,
dimension sums within their own bounds. A light pull towards the expert weights keeps indicators the
sample says nothing about where the experts put them. Weights are fitted on the earlier loans and
judged on the later ones (out of time).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import yaml
from scipy.optimize import minimize
from sklearn.metrics import roc_auc_score, roc_curve

from scoring.catalogue import Catalogue, parse_catalogue
from scoring.score import score_select_sql
from scoring.sql import indicators_sql

OUTCOME_MONTHS = 12
NON_PERFORMING = ("次级", "可疑", "损失")
PULL_TO_EXPERT = 1e-5  # ridge strength towards the expert weights, per loan, on weights scaled to sum 10


class CalibrationError(RuntimeError):
    """The sample cannot support a fit (too few loans or defaults)."""


def outcome_sample(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Loans whose 12-month window has closed: (loan_id, uscc, bank_id, disbursed_on, defaulted).
    Default: 次级 or worse, 90+ days past due, or written off within 12 months of disbursement."""
    return con.execute(f"""
        WITH l AS (
            SELECT loan_id, uscc, bank_id, disbursed_on,
                   CAST(strftime(disbursed_on, '%Y') AS INTEGER) * 12 + CAST(strftime(disbursed_on, '%m') AS INTEGER) - 1 AS k0
            FROM staging.loans),
        last_period AS (SELECT max(CAST(substr(period, 1, 4) AS INTEGER) * 12 + CAST(substr(period, 6, 2) AS INTEGER) - 1) AS k
                        FROM staging.loan_status),
        bad AS (
            SELECT DISTINCT s.loan_id FROM staging.loan_status s JOIN l USING (loan_id)
            WHERE (s.classification IN {NON_PERFORMING} OR s.dpd >= 90)
              AND CAST(substr(s.period, 1, 4) AS INTEGER) * 12 + CAST(substr(s.period, 6, 2) AS INTEGER) - 1
                  BETWEEN l.k0 AND l.k0 + {OUTCOME_MONTHS}
            UNION
            SELECT r.loan_id FROM staging.loan_recoveries r JOIN l USING (loan_id)
            WHERE r.event_type = 'write_off' AND r.event_date < l.disbursed_on + INTERVAL {OUTCOME_MONTHS} MONTH)
        SELECT l.loan_id, l.uscc, l.bank_id, l.disbursed_on, bad.loan_id IS NOT NULL AS defaulted
        FROM l LEFT JOIN bad USING (loan_id), last_period
        WHERE l.k0 + {OUTCOME_MONTHS} <= last_period.k
        ORDER BY l.disbursed_on, l.loan_id""").df()


def sample_points(con: duckdb.DuckDBPyConnection, loans: pd.DataFrame, cat: Catalogue) -> pd.DataFrame:
    """Each loan's indicator points and expert total as of its disbursement date."""
    with loan_targets(con, loans):
        con.execute(f"CREATE OR REPLACE TEMP TABLE _ind AS SELECT *, '' AS snapshot_id FROM ({indicators_sql('_targets')})")
        empty_hits = "(SELECT NULL::VARCHAR AS uscc, NULL::DATE AS as_of, NULL::VARCHAR AS rule_id WHERE false)"
        points = con.execute(f"""
            SELECT l.loan_id, s.* EXCLUDE (uscc, as_of) FROM _loans l
            JOIN ({score_select_sql(cat, '_ind', empty_hits)}) s ON s.uscc = l.uscc AND s.as_of = CAST(l.disbursed_on AS DATE)
            ORDER BY l.loan_id""").df()
        con.execute("DROP TABLE _ind")
    return loans.merge(points, on="loan_id", how="inner", validate="one_to_one")


@contextmanager
def loan_targets(con: duckdb.DuckDBPyConnection, loans: pd.DataFrame) -> Iterator[None]:
    """`_loans` (loan_id, uscc, disbursed_on) and `_targets` (uscc, as_of = disbursement date) on the
    connection for the duration: the point-in-time targets of a training sample."""
    con.register("_loans", loans[["loan_id", "uscc", "disbursed_on"]])
    try:
        con.execute("CREATE OR REPLACE TEMP TABLE _targets AS "
                    "SELECT DISTINCT uscc, CAST(disbursed_on AS DATE) AS as_of FROM _loans")
        yield
    finally:
        con.execute("DROP TABLE IF EXISTS _targets")
        con.unregister("_loans")


@dataclass
class Metrics:
    auc: float
    ks: float
    gini: float
    loans: int
    defaults: int


def discrimination(defaulted: np.ndarray, risk: np.ndarray) -> Metrics:
    """AUC, KS and Gini of a risk measure (higher = riskier) against realised defaults."""
    y = np.asarray(defaulted, dtype=int)
    auc = float(roc_auc_score(y, risk))
    fpr, tpr, _ = roc_curve(y, risk)
    return Metrics(round(auc, 4), round(float(np.max(tpr - fpr)), 4), round(2 * auc - 1, 4), int(len(y)), int(y.sum()))


def fit_weights(points: np.ndarray, defaulted: np.ndarray, cat: Catalogue) -> np.ndarray:
    """Per-point weights c (sum 10) maximising the likelihood of a logistic model on the total,
    within the catalogue's indicator and dimension bounds."""
    expert = np.array([cat.total_weights()[k] for k in _keys(cat)])
    lo_i, hi_i = cat.calibration["indicator_weight_bounds"]
    lo_d, hi_d = cat.calibration["dimension_weight_bounds"]
    x = points / 100.0  # points as shares, so the total is in [0, 10]
    y = np.asarray(defaulted, dtype=float)
    n = len(y)

    def objective(v: np.ndarray) -> tuple[float, np.ndarray]:
        c, a, b = v[:-2], v[-2], v[-1]
        s = x @ c
        z = a + b * s
        p = 1 / (1 + np.exp(-z))
        nll = float(np.sum(np.logaddexp(0, z) - y * z)) / n
        r = c - expert
        g = p - y
        grad_c = b * (x.T @ g) / n + 2 * PULL_TO_EXPERT * r
        return nll + PULL_TO_EXPERT * float(r @ r), np.concatenate([grad_c, [g.mean(), (g @ s) / n]])

    bounds = [(lo_i * e, hi_i * e) for e in expert] + [(None, None), (None, 0.0)]
    members = {d.key: np.array([cat.indicator(k).dimension == d.key for k in _keys(cat)]) for d in cat.dimensions}
    constraints = [{"type": "eq", "fun": lambda v: v[:-2].sum() - 10.0, "jac": lambda v: np.r_[np.ones(19), 0, 0]}]
    for d in cat.dimensions:
        m = members[d.key].astype(float)
        target = 10.0 * d.weight
        constraints.append({"type": "ineq", "fun": lambda v, m=m, t=target: v[:-2] @ m - lo_d * t,
                            "jac": lambda v, m=m: np.r_[m, 0, 0]})
        constraints.append({"type": "ineq", "fun": lambda v, m=m, t=target: hi_d * t - v[:-2] @ m,
                            "jac": lambda v, m=m: np.r_[-m, 0, 0]})
    base = np.log(max(y.mean(), 1e-6) / max(1 - y.mean(), 1e-6))
    start = np.r_[expert, base + 0.5 * (x @ expert).mean(), -0.5]
    res = minimize(objective, start, jac=True, method="SLSQP", bounds=bounds, constraints=constraints,
                   options={"maxiter": 500, "ftol": 1e-12})
    if not res.success:
        raise CalibrationError(f"the weight fit did not converge: {res.message}")
    return np.clip(res.x[:-2], 0, None)


def _keys(cat: Catalogue) -> list[str]:
    return [i.key for i in cat.indicators]


def fitted_catalogue(cat: Catalogue, c: np.ndarray, note: dict) -> dict:
    """The catalogue document with the fitted weights, as the next version."""
    doc = copy.deepcopy(cat.raw)
    keys = _keys(cat)
    dims = [d.key for d in cat.dimensions]
    dim_sum = {d: sum(c[j] for j, k in enumerate(keys) if cat.indicator(k).dimension == d) for d in dims}
    weights = [round(float(dim_sum[d]) / 10.0, 4) for d in dims[:-1]]
    weights.append(round(1.0 - sum(weights), 4))
    for d, w in zip(dims, weights):
        doc["dimensions"][d]["weight"] = w
    for item in doc["indicators"]:
        j = keys.index(item["key"])
        item["weight"] = round(float(c[j] / dim_sum[item["dimension"]]), 4)
    doc["version"] = cat.version + 1
    doc["name"] = f"{cat.name.split(' (')[0]} (weights fitted by sample testing)"
    doc["derived_from"] = {"version": cat.version, "content_hash": cat.content_hash}
    doc["calibration_note"] = note
    return doc


@dataclass
class CalibrationReport:
    as_of: str
    catalogue_version: int
    catalogue_hash: str
    train: dict
    out_of_time: dict
    weights: list[dict]
    dimensions: list[dict]
    metrics: dict[str, dict] = field(default_factory=dict)
    ceiling: dict | None = None
    gap: str = ""
    candidate: dict = field(default_factory=dict)


def calibrate(con: duckdb.DuckDBPyConnection, cat: Catalogue, as_of: date, truth_loans: Path | None = None) -> CalibrationReport:
    loans = outcome_sample(con)
    if len(loans) < 200 or loans["defaulted"].sum() < 20:
        raise CalibrationError(f"{len(loans)} loans with a closed 12-month window and {int(loans['defaulted'].sum())} "
                               "defaults: at least 200 loans and 20 defaults are needed to fit weights")
    sample = sample_points(con, loans, cat)
    share = cat.calibration["out_of_time_share"]
    cutoff = sample["disbursed_on"].sort_values().iloc[int(len(sample) * (1 - share))]
    train, test = sample[sample["disbursed_on"] < cutoff], sample[sample["disbursed_on"] >= cutoff]
    cols = [f"pts_{k}" for k in _keys(cat)]
    c = fit_weights(train[cols].to_numpy(float), train["defaulted"].to_numpy(), cat)
    expert = np.array([cat.total_weights()[k] for k in _keys(cat)])

    def part(frame: pd.DataFrame) -> dict:
        return {"loans": len(frame), "defaults": int(frame["defaulted"].sum()),
                "from": str(frame["disbursed_on"].min().date()), "to": str(frame["disbursed_on"].max().date())}

    metrics = {}
    for name, frame in (("train", train), ("out_of_time", test)):
        pts = frame[cols].to_numpy(float)
        y = frame["defaulted"].to_numpy()
        metrics[name] = {"expert": asdict(discrimination(y, -(pts @ expert))),
                         "fitted": asdict(discrimination(y, -(pts @ c)))}
    ceiling, gap = None, ""
    if truth_loans is not None and Path(truth_loans).exists():
        truth = pd.read_parquet(truth_loans, columns=["loan_id", "pd_12m_observable", "pd_12m_true"])
        t = test.merge(truth, on="loan_id", how="inner")
        if len(t) == len(test):
            ceiling = {"observable": asdict(discrimination(t["defaulted"].to_numpy(), t["pd_12m_observable"].to_numpy())),
                       "true": asdict(discrimination(t["defaulted"].to_numpy(), t["pd_12m_true"].to_numpy()))}
            fitted_auc = metrics["out_of_time"]["fitted"]["auc"]
            gap = (f"out of time, the fitted score reaches AUC {fitted_auc:.4f} against {ceiling['observable']['auc']:.4f} "
                   f"for the simulator's pd_12m_observable (the ceiling any score on recorded data can reach): "
                   f"a gap of {ceiling['observable']['auc'] - fitted_auc:.4f}")
    dims = [d.key for d in cat.dimensions]
    weights = [{"id": i.id, "key": i.key, "zh": i.zh, "dimension": i.dimension,
                "expert_share": round(float(expert[j] / 10), 4), "fitted_share": round(float(c[j] / 10), 4)}
               for j, i in enumerate(cat.indicators)]
    dimensions = [{"dimension": d, "expert": round(float(sum(w["expert_share"] for w in weights if w["dimension"] == d)), 4),
                   "fitted": round(float(sum(w["fitted_share"] for w in weights if w["dimension"] == d)), 4)} for d in dims]
    report = CalibrationReport(as_of.isoformat(), cat.version, cat.content_hash, part(train), part(test), weights,
                               dimensions, metrics, ceiling, gap)
    note = {"fitted_on": as_of.isoformat(), "train": report.train, "out_of_time": report.out_of_time,
            "out_of_time_auc": {"expert": metrics["out_of_time"]["expert"]["auc"],
                                "fitted": metrics["out_of_time"]["fitted"]["auc"]}}
    report.candidate = fitted_catalogue(cat, c, note)
    parse_catalogue(report.candidate, "<fitted catalogue>")  # the candidate must itself be a valid catalogue
    return report


def write_report(report: CalibrationReport, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"calibration-{report.as_of}"
    stem.with_suffix(".json").write_text(json.dumps(asdict(report), ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                                         encoding="utf-8")
    stem.with_suffix(".md").write_text(render_markdown(report), encoding="utf-8")
    return stem.with_suffix(".md"), stem.with_suffix(".json")


def render_markdown(r: CalibrationReport) -> str:
    lines = [f"# Sample testing of the 4+19+1 weights, {r.as_of}", "",
             f"Catalogue version {r.catalogue_version} (`{r.catalogue_hash[:12]}`). Training: {r.train['loans']} loans, "
             f"{r.train['defaults']} defaults, disbursed {r.train['from']} to {r.train['to']}. Out of time: "
             f"{r.out_of_time['loans']} loans, {r.out_of_time['defaults']} defaults, disbursed {r.out_of_time['from']} "
             f"to {r.out_of_time['to']}. Default: 次级 or worse, 90+ days past due, or written off within 12 months.", "",
             "## Discrimination", "", "| sample | weights | AUC | KS | Gini | loans | defaults |", "|---|---|---|---|---|---|---|"]
    for part, by in r.metrics.items():
        for name, m in by.items():
            lines.append(f"| {part} | {name} | {m['auc']:.4f} | {m['ks']:.4f} | {m['gini']:.4f} | {m['loans']} | {m['defaults']} |")
    if r.ceiling:
        for name, m in r.ceiling.items():
            lines.append(f"| out_of_time | simulator pd_12m_{name} | {m['auc']:.4f} | {m['ks']:.4f} | {m['gini']:.4f} | "
                         f"{m['loans']} | {m['defaults']} |")
        lines += ["", f"Gap to the ceiling: {r.gap}."]
    lines += ["", "## Dimension weights", "", "| dimension | expert | fitted |", "|---|---|---|"]
    lines += [f"| {d['dimension']} | {d['expert']:.4f} | {d['fitted']:.4f} |" for d in r.dimensions]
    lines += ["", "## Indicator weights (share of the 1000-point total)", "",
              "| id | indicator | dimension | expert | fitted |", "|---|---|---|---|---|"]
    lines += [f"| {w['id']} | {w['zh']} ({w['key']}) | {w['dimension']} | {w['expert_share']:.4f} | {w['fitted_share']:.4f} |"
              for w in r.weights]
    lines += ["", "Nothing changes until the operator adopts the fitted weights (`valuecredit score calibrate --adopt`), "
              "which writes them as a new catalogue version and keeps the previous one under config/history/.", ""]
    return "\n".join(lines)


def adopt(report: CalibrationReport, catalogue_path: Path) -> Path:
    """Write the fitted weights as the next catalogue version; the current file goes to history/."""
    catalogue_path = Path(catalogue_path)
    history = catalogue_path.parent / "history"
    history.mkdir(parents=True, exist_ok=True)
    archived = history / f"{catalogue_path.stem}.v{report.catalogue_version}{catalogue_path.suffix}"
    archived.write_bytes(catalogue_path.read_bytes())
    header = (f"# The 4+19+1 catalogue, version {report.candidate['version']}: weights fitted by "
              f"`valuecredit score calibrate` on {report.as_of}\n# from version {report.catalogue_version}, kept in "
              f"{archived.name}. The comments of the hand-written version explain every field.\n\n")
    tmp = catalogue_path.with_suffix(".tmp")
    tmp.write_text(header + yaml.safe_dump(report.candidate, allow_unicode=True, sort_keys=False, width=200),
                   encoding="utf-8")
    tmp.replace(catalogue_path)
    return archived


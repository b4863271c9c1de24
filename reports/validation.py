"""`model evaluate --report DIR`: the validation report a credit committee reads, and the tables a
bank implements in its own systems.

The cross-validation's figures (ROC and KS per fold, calibration of the out-of-fold PDs) judge the
procedure; the binning tables, the SHAP importance and the points table describe the models the same
procedure fits on every row, which is what a bank would put into service. Files in DIR:
validation_report.html, binning.csv, points.csv, folds.csv, calibration.csv, shap_importance.csv
(UTF-8 with BOM, so a spreadsheet reads the Chinese, numbers in plain decimals)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from models.evaluate import MODELS, Evaluation, Prepared, fit_models, without_special_codes
from models.train import reliability
from reports import charts
from reports.firm import TEMPLATES, _write
from valuecredit.spreadsheet import neutral

CALIBRATION_BINS = 10


def plain(value, digits: int = 4) -> str:
    """A number in plain decimals (never scientific notation), trailing zeros kept to `digits`."""
    if value is None or np.isnan(float(value)):
        return ""
    if np.isinf(float(value)):
        return "inf" if value > 0 else "-inf"
    return f"{float(value):.{digits}f}"


def bin_bounds(binned, index: int, label) -> tuple[str, str, str]:
    """(lower, upper, categories) of a bin, exactly as the binning splits: a numeric bin holds
    lower <= x < upper; a categorical bin its categories, joined by ' | '."""
    if isinstance(label, str) and label in ("Special", "Missing"):
        return "", "", ""
    if binned.dtype == "categorical":
        return "", "", " | ".join(str(c) for c in binned.splits[index]) if index < len(binned.splits) else ""
    splits = [-np.inf, *binned.splits, np.inf]
    def exact(v):
        return (np.format_float_positional(v, trim="-") if np.isfinite(v) else plain(v))
    return exact(splits[index]), exact(splits[index + 1]), ""


def binning_rows(card) -> list[dict]:
    """Every feature's bins with counts, event rate, WoE, IV and the scorecard's points."""
    table = card.scorecard_.table(style="detailed")
    process = card.scorecard_.binning_process_
    rows = []
    for variable, bins in table.groupby("Variable", sort=False):
        binned = process.get_binned_variable(variable)
        for _, r in bins.iterrows():
            label = r["Bin"] if isinstance(r["Bin"], str) else " | ".join(map(str, r["Bin"]))
            lower, upper, categories = bin_bounds(binned, int(r["Bin id"]), r["Bin"])
            rows.append({"variable": variable, "bin_id": int(r["Bin id"]), "bin": label, "lower": lower, "upper": upper,
                         "categories": categories, "count": int(r["Count"]), "count_share": float(r["Count (%)"]),
                         "good": int(r["Non-event"]), "bad": int(r["Event"]), "bad_rate": float(r["Event rate"]),
                         "woe": float(r["WoE"]), "iv": float(r["IV"]), "coefficient": float(r["Coefficient"]),
                         "points": float(r["Points"])})
    return rows


def feature_iv(rows: list[dict]) -> list[tuple[str, float]]:
    """Each feature's information value (the sum over its bins), highest first."""
    iv: dict[str, float] = {}
    for r in rows:
        iv[r["variable"]] = iv.get(r["variable"], 0.0) + r["iv"]
    return sorted(iv.items(), key=lambda kv: -kv[1])


def shap_importance(gbm, X: pd.DataFrame) -> list[dict]:
    """Mean absolute TreeSHAP contribution to the log-odds per feature, and its share."""
    contributions = gbm.contributions(X).iloc[:, :-1]  # by position: a feature may itself be named base_value
    mean_abs = contributions.abs().mean()
    total = float(mean_abs.sum()) or 1.0
    return [{"feature": f, "mean_abs_contribution": float(v), "share": float(v) / total}
            for f, v in mean_abs.sort_values(ascending=False, kind="stable").items()]


def _text(value: object) -> object:
    """Column names, bin labels and categories come from the bank's file: never a formula in its
    spreadsheet. A bound written as a number (`-inf`, `-7`) stays a number a system can read."""
    try:
        float(value)
        return value
    except (TypeError, ValueError):
        return neutral(value)


def _csv(path: Path, rows: list[dict], formats: dict[str, int]) -> Path:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: plain(v, formats[k]) if k in formats else _text(v) for k, v in r.items()})
    return _write(path, "\ufeff" + out.getvalue())


def write_validation_report(out: Path, data: Prepared, evaluation: Evaluation, source: str, lang: str = "zh",
                            seed: int | None = None) -> Path:
    summary = evaluation.summary
    seed = summary["seed"] if seed is None else seed
    out.mkdir(parents=True, exist_ok=True)
    every = np.arange(len(data.y))
    gbm, gbm_choice, card, card_choice = fit_models(data, every, seed, summary["budget_seconds"] / summary["folds"])
    bins = binning_rows(card)
    ivs = feature_iv(bins)
    importance = shap_importance(gbm, without_special_codes(data.X, data.special_codes))
    calibration = {}
    for name in MODELS:
        table, ece = reliability(data.y, evaluation.out_of_fold[name], CALIBRATION_BINS)
        calibration[name] = {"table": table, "ece": ece,
                             "chart": charts.calibration([(r["mean_pd"], r["observed"], r["n"]) for r in table],
                                                         "预测违约概率" if lang == "zh" else "predicted PD",
                                                         "实际违约率" if lang == "zh" else "observed default rate")}
    folds = [{"fold": f["fold"], "rows": f["rows"], "bad": f["bad"],
              **{f"{m}_{k}": f[m][k] for m in MODELS for k in ("auc", "ks")},
              "gbm_settings": "; ".join(f"{k}={v}" for k, v in f["gbm"]["params"].items()),
              "scorecard_settings": "; ".join(f"{k}={v}" for k, v in f["scorecard"]["params"].items())}
             for f in summary["per_fold"]]
    _csv(out / "binning.csv", bins, {"count_share": 4, "bad_rate": 4, "woe": 6, "iv": 6, "coefficient": 6, "points": 4})
    _csv(out / "points.csv", [{k: r[k] for k in ("variable", "bin_id", "bin", "lower", "upper", "categories", "points")}
                              for r in bins], {"points": 4})
    _csv(out / "folds.csv", folds, {f"{m}_{k}": 4 for m in MODELS for k in ("auc", "ks")})
    _csv(out / "calibration.csv", [{"model": m, "bin": i + 1, **r} for m in MODELS
                                   for i, r in enumerate(calibration[m]["table"])], {"mean_pd": 5, "observed": 5})
    _csv(out / "shap_importance.csv", importance, {"mean_abs_contribution": 6, "share": 4})
    html = TEMPLATES.get_template("validation.html.j2").render(
        lang=lang, zh=lang == "zh", source=source, summary=summary, folds=folds, models=MODELS,
        roc={m: charts.roc(evaluation.roc[m]) for m in MODELS}, calibration=calibration, bins=bins, ivs=ivs,
        importance=importance, importance_chart=charts.bars([(r["feature"], r["share"] * 100) for r in importance[:20]],
                                                           maximum=max([r["share"] * 100 for r in importance] + [1.0]), unit=" %"),
        final={"gbm": gbm_choice.summary(), "scorecard": card_choice.summary()},
        scaling={"pdo": card.pdo, "odds": card.odds, "base_points": card.base_points}, plain=plain)
    return _write(out / "validation_report.html", html)

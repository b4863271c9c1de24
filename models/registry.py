"""The model registry: every trained PD model as readable files under a version id.

A version is a folder holding LightGBM's text model, the calibration map as JSON and the metadata
(features, monotone constraints, parameters, training data, metrics, code version), and a second
text model when the first was refined on the loans (`refinement.txt`, named by the calibration). The version id
is a hash of those files, so a model cannot change under its name: loading checks the hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.estimators import MonotoneGBM, _known_categories, scaled_sum

FILES = ("model.txt", "calibration.json", "metadata.json")
REFINEMENT = "refinement.txt"  # a second booster added to the first (`MonotoneGBM.refine_on`), when there is one
CHAMPION = "champion.json"  # the version nightly scoring uses
DECISIONS = "decisions.jsonl"  # every retraining's verdict: promoted or not, and why


class RegistryError(RuntimeError):
    """A version is missing, incomplete or not what its id says."""


def code_version() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _digest(contents: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in (*FILES, *([REFINEMENT] if REFINEMENT in contents else [])):  # earlier versions keep their ids
        h.update(name.encode() + b"\0" + contents[name] + b"\0")
    return h.hexdigest()[:16]


def save_model(root: Path, model: MonotoneGBM, metadata: dict) -> str:
    """Write a fitted model under its version id (a hash of its files) and return the id."""
    calibration = {"method": model.calibration}
    if model.calibration == "isotonic":
        calibration |= {"x": model.calibrator_.X_thresholds_.tolist(), "y": model.calibrator_.y_thresholds_.tolist()}
    elif model.calibration == "sigmoid":
        calibration |= {"coef": float(model.calibrator_.coef_[0][0]), "intercept": float(model.calibrator_.intercept_[0])}
        if model.refinement_ is not None:
            calibration |= {"refinement": REFINEMENT, "refinement_scale": model.refinement_scale_}
    meta = {"features": list(model.feature_names_in_), "categorical": model.categorical_,
            "categories": model.categories_, "monotone": {k: int(v) for k, v in (model.monotone or {}).items()},
            "params": {k: v for k, v in model.get_params().items() if k != "monotone"},
            "code_version": code_version()} | metadata
    contents = {
        "model.txt": model.model_.booster_.model_to_string().encode(),
        "calibration.json": json.dumps(calibration, sort_keys=True, indent=1).encode(),
        "metadata.json": json.dumps(meta, sort_keys=True, indent=1, ensure_ascii=False, default=str).encode(),
    }
    if model.refinement_ is not None:
        contents[REFINEMENT] = model.refinement_.model_to_string().encode()
    version = "pd-" + _digest(contents)
    folder = Path(root) / version
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    return version


@dataclass
class RegisteredModel:
    version: str
    booster: lgb.Booster
    calibration: dict
    metadata: dict
    refinement: lgb.Booster | None = None  # added to `booster`, times calibration["refinement_scale"]

    def frame(self, X: pd.DataFrame) -> pd.DataFrame:
        X = pd.DataFrame(X)[self.metadata["features"]].copy()
        for c in self.metadata["categorical"]:
            X[c] = _known_categories(X[c], self.metadata["categories"][c])
        return X

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        X = self.frame(X)
        return scaled_sum(self.scaled_boosters(), X, raw_score=True)

    def pd(self, X: pd.DataFrame) -> np.ndarray:
        raw = self.raw_score(X)
        method = self.calibration["method"]
        if method == "isotonic":  # what IsotonicRegression.predict does: interpolate, clip at the ends
            return np.interp(1 / (1 + np.exp(-raw)), self.calibration["x"], self.calibration["y"])
        if method == "sigmoid":
            return 1 / (1 + np.exp(-(self.calibration["coef"] * raw + self.calibration["intercept"])))
        return 1 / (1 + np.exp(-raw))

    def scaled_boosters(self) -> list[tuple[float, lgb.Booster]]:
        """Every booster the raw score adds up, with its weight in the sum: the model's, and its
        refinement's when it has one (divided by the Platt slope it was boosted under)."""
        refined = [(self.calibration["refinement_scale"], self.refinement)] if self.refinement is not None else []
        return [(1.0, self.booster), *refined]

    def boosters(self) -> list[lgb.Booster]:
        return [b for _, b in self.scaled_boosters()]

    def used_features(self) -> list[str]:
        """The features the model splits on at least once: the only ones that can be a reason."""
        splits = sum(b.feature_importance("split") for b in self.boosters())
        return [f for f, n in zip(self.metadata["features"], splits) if n > 0]

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        X = self.frame(X)
        out = scaled_sum(self.scaled_boosters(), X, pred_contrib=True)  # SHAP values add over a sum of models
        return pd.DataFrame(out, columns=[*X.columns, "base_value"], index=X.index)


def load_model(root: Path, version: str) -> RegisteredModel:
    folder = Path(root) / version
    missing = [n for n in FILES if not (folder / n).exists()]
    if missing:
        raise RegistryError(f"model {version} in {root}: missing {', '.join(missing)}")
    contents = {n: (folder / n).read_bytes() for n in FILES}
    calibration = json.loads(contents["calibration.json"])
    if "refinement" in calibration:
        if not (folder / REFINEMENT).exists():
            raise RegistryError(f"model {version} in {root}: missing {REFINEMENT}")
        contents[REFINEMENT] = (folder / REFINEMENT).read_bytes()
    if "pd-" + _digest(contents) != version:
        raise RegistryError(f"model {version} in {root}: its files no longer match its id (changed after training)")
    refinement = lgb.Booster(model_str=contents[REFINEMENT].decode()) if REFINEMENT in contents else None
    return RegisteredModel(version, lgb.Booster(model_str=contents["model.txt"].decode()), calibration,
                           json.loads(contents["metadata.json"]), refinement)


def champion(root: Path) -> str | None:
    """The version nightly scoring is pinned to, or None before the first model is promoted."""
    path = Path(root) / CHAMPION
    return json.loads(path.read_text())["version"] if path.exists() else None


def last_decision(root: Path) -> dict | None:
    """The latest retraining verdict in the decision log, or None before the first."""
    path = Path(root) / DECISIONS
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.exists() else []
    return json.loads(lines[-1]) if lines else None


def record_decision(root: Path, decision: dict) -> None:
    """Append a retraining verdict to the decision log; a promotion also moves the champion pin
    (written to a temporary file and renamed, so a crash never leaves a half-written pin)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    line = json.dumps(decision, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    with open(root / DECISIONS, "a+b") as log:  # appends whatever the position; reads the last byte first
        # a line a crash cut short stays unreadable on its own line: appended to it, this verdict was lost too
        end = log.seek(0, os.SEEK_END)
        if end:
            log.seek(end - 1)
            if log.read(1) != b"\n":
                line = "\n" + line
        log.write(line.encode("utf-8"))
        log.flush()
        os.fsync(log.fileno())
    if decision["promoted"]:
        tmp = root / (CHAMPION + ".tmp")
        tmp.write_text(json.dumps({"version": decision["version"], "since": decision["decided_on"],
                                   "replaces": decision.get("champion")}, sort_keys=True, indent=1))
        os.replace(tmp, root / CHAMPION)

"""The model registry: every trained PD model as readable files under a version id.

A version is a folder holding LightGBM's text model, the calibration map as JSON and the metadata
(features, monotone constraints, parameters, training data, metrics, code version). The version id
is a hash of those files, so a model cannot change under its name: loading checks the hash.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from models.estimators import MonotoneGBM

FILES = ("model.txt", "calibration.json", "metadata.json")


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
    for name in FILES:
        h.update(name.encode() + b"\0" + contents[name] + b"\0")
    return h.hexdigest()[:16]


def save_model(root: Path, model: MonotoneGBM, metadata: dict) -> str:
    """Write a fitted model under its version id (a hash of its files) and return the id."""
    calibration = {"method": model.calibration}
    if model.calibration == "isotonic":
        calibration |= {"x": model.calibrator_.X_thresholds_.tolist(), "y": model.calibrator_.y_thresholds_.tolist()}
    elif model.calibration == "sigmoid":
        calibration |= {"coef": float(model.calibrator_.coef_[0][0]), "intercept": float(model.calibrator_.intercept_[0])}
    meta = {"features": list(model.feature_names_in_), "categorical": model.categorical_,
            "categories": model.categories_, "monotone": {k: int(v) for k, v in (model.monotone or {}).items()},
            "params": {k: v for k, v in model.get_params().items() if k != "monotone"},
            "code_version": code_version()} | metadata
    contents = {
        "model.txt": model.model_.booster_.model_to_string().encode(),
        "calibration.json": json.dumps(calibration, sort_keys=True, indent=1).encode(),
        "metadata.json": json.dumps(meta, sort_keys=True, indent=1, ensure_ascii=False, default=str).encode(),
    }
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

    def frame(self, X: pd.DataFrame) -> pd.DataFrame:
        X = pd.DataFrame(X)[self.metadata["features"]].copy()
        for c in self.metadata["categorical"]:
            X[c] = pd.Categorical(X[c].astype("string"), categories=self.metadata["categories"][c])
        return X

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(self.frame(X), raw_score=True)

    def pd(self, X: pd.DataFrame) -> np.ndarray:
        raw = self.raw_score(X)
        method = self.calibration["method"]
        if method == "isotonic":  # what IsotonicRegression.predict does: interpolate, clip at the ends
            return np.interp(1 / (1 + np.exp(-raw)), self.calibration["x"], self.calibration["y"])
        if method == "sigmoid":
            return 1 / (1 + np.exp(-(self.calibration["coef"] * raw + self.calibration["intercept"])))
        return 1 / (1 + np.exp(-raw))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        X = self.frame(X)
        return pd.DataFrame(self.booster.predict(X, pred_contrib=True), columns=[*X.columns, "base_value"], index=X.index)


def load_model(root: Path, version: str) -> RegisteredModel:
    folder = Path(root) / version
    missing = [n for n in FILES if not (folder / n).exists()]
    if missing:
        raise RegistryError(f"model {version} in {root}: missing {', '.join(missing)}")
    contents = {n: (folder / n).read_bytes() for n in FILES}
    if "pd-" + _digest(contents) != version:
        raise RegistryError(f"model {version} in {root}: its files no longer match its id (changed after training)")
    return RegisteredModel(version, lgb.Booster(model_str=contents["model.txt"].decode()),
                           json.loads(contents["calibration.json"]), json.loads(contents["metadata.json"]))

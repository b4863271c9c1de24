"""`valuecredit config check`: every configuration file an operator edits, validated by the same
loaders the nightly run uses, with its version and content hash. An error names the file, the line,
the field and the rule it breaks, so that the operator can fix it before the night starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lending.calendar import DEFAULT_OVERRIDES, WorkingDays
from lending.ledger.config import DEFAULT_POOL, load_pool_config
from lending.products import DEFAULT_PRODUCTS, load_products
from models.nightly import REASON_CODES, load_reason_codes
from pipelines.resources import resources
from reports.vocabulary import VOCABULARY, load_vocabulary
from scoring.catalogue import DEFAULT_CATALOGUE, load_catalogue
from valuecredit.configfile import content_hash, read_yaml


@dataclass(frozen=True)
class ConfigFile:
    name: str
    filename: str  # its usual name in a configuration folder
    in_force: Callable[[], str]  # the path the nightly run reads: from the run's own resource
    load: Callable[[Path], Any]


CONFIG_FILES = (
    ConfigFile("scoring catalogue (4+19+1, negative list)", DEFAULT_CATALOGUE.name, lambda: resources()["catalogue"].path,
               load_catalogue),
    ConfigFile("product catalogue", DEFAULT_PRODUCTS.name, lambda: resources()["products"].path, load_products),
    ConfigFile("risk-compensation pool", DEFAULT_POOL.name, lambda: resources()["pool_files"].pool, load_pool_config),
    ConfigFile("working-day calendar overrides", DEFAULT_OVERRIDES.name, lambda: resources()["pool_files"].calendar_overrides,
               WorkingDays.load),
    ConfigFile("reason codes", REASON_CODES.name, lambda: str(REASON_CODES), load_reason_codes),
    ConfigFile("report vocabulary (codes in words)", VOCABULARY.name, lambda: str(VOCABULARY), load_vocabulary),
)


@dataclass(frozen=True)
class Checked:
    name: str
    path: Path
    version: str
    content_hash: str
    error: str = ""  # one line per problem, "file: field: problem (line N)"; empty when the file is valid


def config_paths(folder: Path | None = None) -> dict[ConfigFile, Path]:
    """Where each file is read from: `folder` (by the files' usual names) when given, else where the
    nightly run's resources read it."""
    if folder is not None:
        return {f: Path(folder) / f.filename for f in CONFIG_FILES}
    return {f: Path(f.in_force()) for f in CONFIG_FILES}


def check_config(folder: Path | None = None) -> list[Checked]:
    out = []
    for spec, path in config_paths(folder).items():
        try:
            loaded = spec.load(path)
        except (ValueError, RuntimeError) as exc:  # every loader's error names the file
            out.append(Checked(spec.name, path, "", "", str(exc)))
            continue
        version = getattr(loaded, "version", None)
        digest = getattr(loaded, "content_hash", None) or (
            content_hash(read_yaml(path, ValueError, spec.name)) if path.exists() else "(no file: none declared)")
        out.append(Checked(spec.name, path, str(version) if version is not None else "-", digest))
    return out

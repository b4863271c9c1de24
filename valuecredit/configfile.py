"""Reading the operator's YAML files: one way to fail, one way to fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """An operator's configuration file that cannot be used as it is: only editing it can help, so
    nothing retries it."""


def read_yaml(path: Path, error: type[Exception], what: str) -> Any:
    """The parsed file, or `error` naming the file and why it cannot be read."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: not valid YAML{where}: {problem}") from None


def content_hash(doc: Any) -> str:
    """Hash of what the file says, not how it is written: comments and layout do not change it."""
    canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

"""`valuecredit config check`: every configuration file an operator edits, validated by the same
loaders the nightly run uses, with its version and content hash. An error names the file, the line,
the field and the rule it breaks, so that the operator can fix it before the night starts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lending.calendar import DEFAULT_OVERRIDES, WorkingDays
from lending.ledger.config import DEFAULT_POOL, load_pool_config
from lending.products import DEFAULT_PRODUCTS, load_products
from models.nightly import REASON_CODES, load_reason_codes
from pipelines.resources import resources
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
)


@dataclass(frozen=True)
class Checked:
    name: str
    path: Path
    version: str
    content_hash: str
    error: str = ""  # "file:line: field: problem", empty when the file is valid


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
            out.append(Checked(spec.name, path, "", "", with_line(path, str(exc))))
            continue
        version = getattr(loaded, "version", None)
        digest = getattr(loaded, "content_hash", None) or (
            content_hash(read_yaml(path, ValueError, spec.name)) if path.exists() else "(no file: none declared)")
        out.append(Checked(spec.name, path, str(version) if version is not None else "-", digest))
    return out


_PRODUCT_FIELD = re.compile(r"^product (?P<pid>[^,]+), (?P<field>[^:]+):")


def with_line(path: Path, message: str) -> str:
    """The loader's message with the line of the field it names: `file:line: field: problem`."""
    prefix = f"{path}: "
    if not message.startswith(prefix) or " at line " in message:  # a YAML syntax error carries its own line
        return message
    rest = message[len(prefix):]
    line = None
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        root = None
    if root is not None:
        if m := _PRODUCT_FIELD.match(rest):
            line = _product_line(root, m["pid"], m["field"])
        else:
            line = _line_of(root, rest.split(":", 1)[0].split(" ", 1)[0])
    return f"{path}:{line}: {rest}" if line else message


def _tokens(field: str) -> list[str | int]:
    """`negative_list[7].params.months` -> ['negative_list', 7, 'params', 'months']."""
    out: list[str | int] = []
    for part in field.split("."):
        for name, index in re.findall(r"([^\[\]]+)|\[(\d+)\]", part):
            out.append(int(index) if index else name)
    return out


def _child(node: yaml.Node, token: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(token, int) and token < len(node.value):
        return node.value[token]
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if k.value == str(token)), None)
    return None


def _line_of(root: yaml.Node, field: str) -> int | None:
    """The line of the deepest node of `field` under `root` present in the file (1-based)."""
    node, line = root, None
    for token in _tokens(field):
        node = _child(node, token)
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _product_line(root: yaml.Node, product_id: str, field: str) -> int | None:
    """The line of `field` in the product of that id (the product's own line when the field is absent)."""
    products = _child(root, "products")
    for item in getattr(products, "value", []):
        pid = _child(item, "product_id")
        if pid is not None and pid.value == product_id:
            return _line_of(item, field) or item.start_mark.line + 1
    return None

"""Reading the operator's YAML files: one way to fail, one way to fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

# An operator's file is a few tens of kilobytes (the product catalogue of 17 banks: 33 KB). Anything
# far larger is a mistake (a data file, a device) and is refused before it is read whole.
MAX_CONFIG_BYTES = 4 << 20
# Aliases let a small file stand for a huge document (each level repeating the one before): the
# document as its readers walk it, counted through the aliases, may hold no more values than this.
MAX_CONFIG_VALUES = 1_000_000


class ConfigError(ValueError):
    """An operator's configuration file that cannot be used as it is: only editing it can help, so
    nothing retries it."""


class _Loader(yaml.SafeLoader):
    """The safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently:
    a second `max_pd:` further down a product would quietly replace the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} given twice in one mapping",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path, error: type[Exception], what: str) -> Any:
    """The parsed file, or `error` naming the file and why it cannot be read."""
    path = Path(path)
    if path.is_dir():
        raise error(f"{path}: a directory, not a {what} file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise error(f"{path}: no such {what} file") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} file: {exc.strerror or exc}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise error(f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB: not a {what} file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}): save the {what} as UTF-8") from None
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise error(f"{path}: not valid YAML{where}: {problem}") from None
    if (size := _expanded_size(doc, {}, set())) is None:
        raise error(f"{path}: an alias refers to a value that contains it: the {what} would never end")
    if size > MAX_CONFIG_VALUES:
        raise error(f"{path}: its aliases expand to {size:,} values (at most {MAX_CONFIG_VALUES:,}): not a {what}")
    return doc


def _expanded_size(value: Any, sizes: dict[int, int], open_: set[int]) -> int | None:
    """How many values the document holds once every alias is expanded, computed once per distinct
    value (aliases share one object); None when a value contains itself."""
    if not isinstance(value, dict | list):
        return 1
    if id(value) in sizes:
        return sizes[id(value)]
    if id(value) in open_:
        return None
    open_.add(id(value))
    total = 1
    for child in (list(value.keys()) + list(value.values())) if isinstance(value, dict) else value:
        n = _expanded_size(child, sizes, open_)
        if n is None:
            return None
        total += n
    open_.discard(id(value))
    sizes[id(value)] = total
    return total


def content_hash(doc: Any) -> str:
    """Hash of what the file says, not how it is written: comments and layout do not change it."""
    canonical = json.dumps(doc, sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()

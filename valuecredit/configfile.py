"""Reading the operator's YAML files: one way to fail, one way to check a shape (pydantic), one way
to fingerprint."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, StrictInt, StrictStr, ValidationError

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

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        # PyYAML lets a date that does not exist (2027-13-01) escape as a bare ValueError
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            raise yaml.constructor.ConstructorError(None, None, f"{node.value!r} is not a date ({exc})",
                                                    node.start_mark) from None


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


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


def validated(path: Path, schema: type[BaseModel], error: type[Exception], what: str,
              empty: Any = None) -> tuple[Any, Any]:
    """The file read safely (`read_yaml`) and checked against `schema`, a pydantic model: (the
    model, the parsed document). A problem is `error` naming the file, the field, the problem and
    the line it is on, one line per problem. An empty file (or one of comments only) stands for
    `empty` where that is given, and is refused otherwise."""
    path = Path(path)
    doc = read_yaml(path, error, what)
    if doc is None:
        if empty is None:
            raise error(f"{path}: empty (or only comments): expected the {what}")
        doc = empty
    try:
        return schema.model_validate(doc), doc
    except ValidationError as exc:
        text, lines = path.read_text(encoding="utf-8"), []
        for problem in exc.errors(include_url=False):
            loc, what_ = tuple(problem["loc"]), _plainly(problem)
            if loc and loc[-1] == "[key]":  # a mapping's key of the wrong type (a year written as text)
                loc, what_ = loc[:-1], f"as a key, {what_}"
            field, line = _where(text, loc)
            lines.append(f"{path}: {field}: {what_} (line {line})")
        raise error("\n".join(lines)) from None


def _plainly(problem: dict) -> str:
    """pydantic's error as the operator should read it."""
    kind, found = problem["type"], problem.get("input")
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "not a known key (a misspelling?)"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"expected a whole number, found {found!r}"
    if kind == "bool_type":
        return f"expected true or false, found {found!r}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys, found {found!r}"
    if kind == "list_type":
        return f"expected a list, found {found!r}"
    if kind == "string_type":
        return f"expected text, found {found!r}"
    if kind == "value_error":
        return str(problem["ctx"]["error"])
    return problem["msg"]


def _where(text: str, loc: tuple) -> tuple[str, int]:
    """The field's name as the operator wrote it (`a.b[0].c`: keys of mappings, positions in lists)
    and the line of its value in the YAML text, or of the nearest enclosing value that is there (a
    missing key: the mapping that lacks it)."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    line = 1 if node is None else node.start_mark.line + 1
    field = ""
    for part in loc:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            field += f"[{part}]"
            node = node.value[part] if part < len(node.value) else None
        else:
            field += f".{part}"
            node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == str(part)),
                        None) if isinstance(node, yaml.MappingNode) else None
        if node is not None:
            line = node.start_mark.line + 1
        else:
            node = yaml.ScalarNode("", "")  # past what the file holds: later parts named, the line kept
    return field.lstrip(".") or "(top level)", line


def bounded(lo: int, hi: int) -> Any:
    """A whole number (not a bool, not 2.5) in [lo, hi]."""

    def check(v: int) -> int:
        if not lo <= v <= hi:
            raise ValueError(f"must lie in [{lo}, {hi}], found {v}")
        return v

    return Annotated[StrictInt, AfterValidator(check)]


def _iso_date(v: Any) -> date:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if isinstance(v, str):
        try:
            return date.fromisoformat(v)
        except ValueError:
            pass
    raise ValueError(f"expected a date YYYY-MM-DD, found {v!r}")


def _non_blank(v: str) -> str:
    if not v.strip():
        raise ValueError("empty")
    return v


NonBlank = Annotated[StrictStr, AfterValidator(_non_blank)]  # text with something in it
Version = bounded(1, 10**6)  # a file's version number, raised by each change the operator adopts

# a date written YYYY-MM-DD, quoted or not (YAML reads the unquoted form as a date); never a number
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


class Schema(BaseModel):
    """An operator file's shape: every key known, every value of its exact type."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

"""Reading the operator's YAML files: one way to fail, one way to check a shape (pydantic), one way
to fingerprint."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    FiniteFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
)

# An operator's file is a few tens of kilobytes (the product catalogue of 17 banks: 33 KB). Anything
# far larger is a mistake (a data file, a device) and is refused before it is read whole.
MAX_CONFIG_BYTES = 4 << 20
# Aliases let a small file stand for a huge document (each level repeating the one before): the
# document as its readers walk it, counted through the aliases, may hold no more values than this.
MAX_CONFIG_VALUES = 1_000_000
MAX_PROBLEMS = 20  # named one by one; beyond that, counted


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


    def construct_yaml_int(self, node: yaml.ScalarNode) -> Any:
        # YAML 1.1 reads 0300 as octal and 1:30 as base 60: a cap or a deadline would load silently wrong
        if not _DECIMAL.fullmatch(node.value.replace("_", "")):
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.value!r}: write whole numbers in plain decimal (a leading 0 reads as octal, "
                "a colon as base 60, 0x as hexadecimal)", node.start_mark)
        try:
            return super().construct_yaml_int(node)
        except ValueError as exc:  # more digits than Python converts
            raise yaml.constructor.ConstructorError(None, None, f"not a usable number ({exc})", node.start_mark) from None


_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)
_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)


def read_yaml(path: Path, error: type[Exception], what: str) -> Any:
    """The parsed file, or `error` naming the file and why it cannot be read."""
    path = Path(path)
    return _parse(_read_text(path, error, what), path, error, what)


def _read_text(path: Path, error: type[Exception], what: str) -> str:
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
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}): save the {what} as UTF-8") from None


def _parse(text: str, path: Path, error: type[Exception], what: str) -> Any:
    try:
        doc = yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise error(f"{path}: nested too deeply to be a {what}") from None
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
    text = _read_text(path, error, what)
    doc = _parse(text, path, error, what)
    if doc is None:
        if empty is None:
            raise error(f"{path}: empty (or only comments): expected the {what}")
        doc = empty
    try:
        return schema.model_validate(doc), doc
    except ValidationError as exc:
        raise error(_problems(exc, path, yaml.compose(text, Loader=yaml.SafeLoader), lines=True)) from None


def checked(doc: Any, schema: type[BaseModel], error: type[Exception], where: str) -> Any:
    """A document made by the program rather than read from a file (a fitted catalogue before it is
    written), checked against `schema` as `validated` checks a file: the same fields and problems,
    named after `where`, with no line to give."""
    try:
        return schema.model_validate(doc)
    except ValidationError as exc:  # its fields found as in a file's: in the document written as YAML
        try:
            root = yaml.compose(yaml.safe_dump(doc, allow_unicode=True), Loader=yaml.SafeLoader)
        except yaml.YAMLError:  # a value YAML cannot write (a numpy number): the fields, without lines
            root = None
        raise error(_problems(exc, where, root, lines=False)) from None


class Invalid(ValueError):
    """A rule a validator checks over a whole list or mapping, broken by one of its items: `at` is the
    way from the validated value to that item (`Invalid("listed twice", 3, "key")` on a list), so the
    problem is named, and its line found, where the operator must edit."""

    def __init__(self, problem: str, *at: str | int) -> None:
        super().__init__(problem)
        self.at = at


def _problems(exc: ValidationError, path: Path | str, root: yaml.Node | None, lines: bool) -> str:
    out, problems = [], exc.errors(include_url=False)
    for problem in problems[:MAX_PROBLEMS]:
        loc, what = tuple(problem["loc"]), _plainly(problem)
        if loc and loc[-1] == "[key]":  # a mapping's key of the wrong type (a year written as text)
            loc, what = loc[:-1], f"as a key, {what}"
        if isinstance(cause := problem.get("ctx", {}).get("error"), Invalid):
            loc += cause.at
        if problem["type"] == "invalid_key":  # pydantic names it by its value (true as 1): its mapping names it
            loc = loc[:-1]
        field, line, node = _where(root, loc)
        if problem["type"] == "invalid_key":
            line = _key_line(node, problem.get("input")) or line
        out.append(f"{path}: {field}: {what}" + (f" (line {line})" if lines else ""))
    if len(problems) > MAX_PROBLEMS:
        out.append(f"{path}: and {len(problems) - MAX_PROBLEMS} more problems")
    return "\n".join(out)


def _shown(value: Any) -> str:
    """A value as the operator wrote it, cut short."""
    text = value.isoformat() if isinstance(value, date) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _plainly(problem: dict) -> str:
    """pydantic's error as the operator should read it."""
    kind, found = problem["type"], _shown(problem.get("input"))
    if kind == "missing":
        return "missing"
    if kind == "extra_forbidden":
        return "not a known key (a misspelling?)"
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"expected a whole number, found {found}"
    if kind == "float_type":
        return f"expected a number, found {found}"
    if kind == "finite_number":
        return f"expected a finite number, found {found}"
    if kind == "literal_error":
        return f"expected {problem['ctx']['expected']}, found {found}"
    if kind == "union_tag_invalid":
        return f"{problem['ctx']['discriminator']} must be {problem['ctx']['expected_tags']}, found {problem['ctx']['tag']!r}"
    if kind == "union_tag_not_found":
        return f"{problem['ctx']['discriminator']} missing"
    if kind == "bool_type":
        return f"expected true or false, found {found}"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"expected a mapping of keys, found {found}"
    if kind == "list_type":
        return f"expected a list, found {found}"
    if kind == "string_type":  # yes/no/on/off, numbers and dates are not text to YAML
        return f"expected text, found {found}" + ("" if isinstance(problem["input"], dict | list) else ": put it in quotes")
    if kind == "invalid_key":  # yes, no, 3 or a date as a key: YAML reads them as other than text
        return f"the key {found} is not text: put it in quotes"
    if kind == "value_error":
        return str(problem["ctx"]["error"])
    return problem["msg"]


def _where(root: yaml.Node | None, loc: tuple) -> tuple[str, int, yaml.Node | None]:
    """The field's name as the operator wrote it (`a.b[0].c`: keys of mappings, positions in lists),
    the line it is on (a key's own line, or the nearest enclosing key's when it is missing) and its node."""
    node, line, field = root, 1 if root is None else root.start_mark.line + 1, ""
    for part in loc:
        if isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            field += f"[{part}]"
            node = node.value[part] if part < len(node.value) else None
            line = node.start_mark.line + 1 if node is not None else line
        elif isinstance(node, yaml.MappingNode) and _is_tag(node, part):
            continue
        else:
            field += f".{part}"
            entry = next(((k, v) for k, v in _pairs(node) if isinstance(k, yaml.ScalarNode) and k.value == str(part)),
                         None) if isinstance(node, yaml.MappingNode) else None
            node = entry[1] if entry else None
            line = entry[0].start_mark.line + 1 if entry else line
    return field.lstrip(".") or "(top level)", line, node


def _key_line(node: yaml.Node | None, key: Any) -> int | None:
    """The line of the key YAML read as `key` (true, 3, a date: not text) in the mapping `node`."""
    if not isinstance(node, yaml.MappingNode):
        return None
    for k, _ in _pairs(node):
        if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:str":
            try:
                if yaml.safe_load(k.value) == key:
                    return k.start_mark.line + 1
            except yaml.YAMLError:
                continue
    return None


def _is_tag(node: yaml.MappingNode, part: Any) -> bool:
    """pydantic names the member a tagged union chose (`transform.bands.edges`): not a key of the
    mapping but the value of its tag (`type: bands`), and no place in the file."""
    pairs = _pairs(node)
    keys = [k.value for k, _ in pairs if isinstance(k, yaml.ScalarNode)]
    return str(part) not in keys and any(isinstance(k, yaml.ScalarNode) and k.value == "type" and
                                         isinstance(v, yaml.ScalarNode) and v.value == str(part) for k, v in pairs)


def _pairs(node: yaml.MappingNode) -> list[tuple[yaml.Node, yaml.Node]]:
    """A mapping's own entries, then those it takes from merge keys (`<<: *defaults`), as YAML reads them."""
    own, merged = [], []
    for k, v in node.value:
        if isinstance(k, yaml.ScalarNode) and k.tag == "tag:yaml.org,2002:merge":
            for m in (v.value if isinstance(v, yaml.SequenceNode) else [v]):
                if isinstance(m, yaml.MappingNode):
                    merged += _pairs(m)
        else:
            own.append((k, v))
    return own + merged


def bounded(lo: int, hi: int) -> Any:
    """A whole number (not a bool, not 2.5) in [lo, hi]."""

    def check(v: int) -> int:
        if not lo <= v <= hi:
            raise ValueError(f"must lie in [{lo}, {hi}], found {v}")
        return v

    return Annotated[StrictInt, AfterValidator(check)]


def number_in(lo: float, hi: float = math.inf, *, above: bool = False) -> Any:
    """A finite number, whole or not (never a bool), from lo (excluded when `above`) to hi."""

    def check(v: float) -> float:
        if (v <= lo if above else v < lo) or v > hi:
            low = f"{'above' if above else 'at least'} {_number(lo)}"
            raise ValueError(f"must be {low}" + (f" and at most {_number(hi)}" if hi < math.inf else "") + f", found {v!r}")
        return v

    return Annotated[FiniteFloat, AfterValidator(check)]


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def one_of(choices: Iterable[str], refusal: str) -> Any:
    """Text that is one of `choices`; else `refusal`, with {value} (as written) and {known} (the choices)."""
    known = tuple(choices)

    def check(v: str) -> str:
        if v not in known:
            raise ValueError(refusal.format(value=_shown(v), known=", ".join(known)))
        return v

    return Annotated[StrictStr, AfterValidator(check)]


def not_below(floor: str, refusal: str) -> Any:
    """A field validator (wrap it in `field_validator(field)`): the value may not be below the field
    `floor`, declared before it; `refusal` says why, with {value} and {floor}."""

    def check(cls, value: int, info: ValidationInfo) -> int:
        other = info.data.get(floor)
        if other is not None and value < other:
            raise ValueError(refusal.format(value=value, floor=other))
        return value

    return check


def _iso_date(v: Any) -> date:
    if isinstance(v, date) and not isinstance(v, datetime):
        return v
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
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

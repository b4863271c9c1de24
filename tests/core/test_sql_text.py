"""No value ever becomes SQL text: every piece of text interpolated into SQL is provably SQL-safe.

The test parses (ast) every production module and looks at each f-string, `%` format,
`.format()` call and `+` of strings. Inside a SQL-fragment builder (a function returning `valuecredit.sqltext.SQL`, or
whose name ends in `_sql`) every one of them is SQL, and so is every value it returns; elsewhere one is SQL when its literal text holds an upper-case SQL keyword (SELECT,
INSERT, UPDATE, DELETE, CREATE, COPY, ATTACH, FROM, WHERE, DROP, ALTER, ...) or a table function
(`read_csv(`, `read_parquet(`). Every interpolated expression must then be safe, and safe means only:

- a call to `q()` (identifiers) or `lit()` (the few values DuckDB cannot bind), from valuecredit.sqltext,
  or to its `type_name()` (a column type as DESCRIBE gives it, refused unless it looks like one);
- a number or string written in the code, `int(...)`, `len(...)`, or a number format (`{x:d}`, `{x:.2f}`);
- an ALL_CAPS name or attribute (a module constant written in the code);
- a call to a builder (`-> SQL`, or a collection of SQL, or named `*_sql`: its own f-strings and returns,
  and what it appends to its local lists, are checked in turn); a safe text's `.replace(x, safe)`;
- an attribute declared `self.x: SQL` somewhere (every assignment to an attribute so named is checked);
- a safe template (or one kept in an ALL_CAPS constant) whose `.format()` arguments are safe;
- a name or attribute whose name ends in `_sql`, or a parameter typed `SQL`: every argument a call
  passes to such a parameter (by position or keyword, of any function so defined) is checked at the call;
- `"sep".join(...)` over safe elements (a comprehension whose element is safe, or a safe name);
- an f-string whose own interpolations are safe; `a + b`, `a if c else b`, `(a, b)[i]` of safe parts;
- a local name whose every assignment in the function is safe; a loop variable over a literal tuple or
  list of strings or numbers, over an ALL_CAPS constant (or its `.items()`), or over `range(...)`;
  a list, dict or comprehension of safe elements;
- `a + b` (or any operator, `a or b`) of safe parts; `{x!r}` only of a number: an int/float constant, `int(...)`, `float(...)`, or arithmetic of them.

Error messages (the f-strings under `raise`) are not SQL. Anything else (a parameter, a path, a date, a source name, an id) fails with file:line and the
expression: bind it (`con.execute(sql, [value])`), quote it (`q()` / `lit()`), or name the fragment
`*_sql` so that its builder is checked in turn.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

import pytest

from tests.core.test_layout import RANK

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tuple(sorted(RANK))  # every package of the layout

SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|COPY|ATTACH|DETACH|FROM|WHERE|DROP|ALTER|JOIN|VALUES|PRAGMA|"
    r"EXPORT|IMPORT|INSTALL|LOAD|SET|UNION|GROUP BY|ORDER BY|CASE WHEN)\b|\b(read_csv|read_parquet|read_json)\(")
QUOTERS = {"q", "lit", "type_name"}
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
SAFE_CALLS = {"int", "float", "len"}
NUMBER_FORMAT = re.compile(r"^[^a-zA-Z]*[dfeg%n]$")
ALL_CAPS = re.compile(r"^_?[A-Z][A-Z0-9_]*$")


def _is_sql_type(annotation: ast.AST | None) -> bool:
    """`SQL`, or `SQL | None`."""
    if isinstance(annotation, ast.BinOp) and isinstance(annotation.op, ast.BitOr):
        return _is_sql_type(annotation.left) and isinstance(annotation.right, ast.Constant) or (
            _is_sql_type(annotation.right) and isinstance(annotation.left, ast.Constant))
    return (isinstance(annotation, ast.Name) and annotation.id == "SQL") or (
        isinstance(annotation, ast.Constant) and annotation.value == "SQL")


def _is_builder(node: ast.AST) -> bool:
    """A function returning SQL text, or a collection of it (`-> list[tuple[str, SQL]]`)."""
    return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
        node.name.endswith("_sql") or (node.returns is not None and any(
            _is_sql_type(n) for n in ast.walk(node.returns))))


def _sql_params(node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[list[str], set[str]]:
    """The positional parameter names (without self/cls) and those that take SQL text."""
    a = node.args
    positional = [x.arg for x in [*a.posonlyargs, *a.args]]
    if positional and positional[0] in ("self", "cls"):
        positional = positional[1:]
    sql = {x.arg for x in [*a.posonlyargs, *a.args, *a.kwonlyargs]
           if _is_sql_type(x.annotation) or x.arg.endswith("_sql")}
    return positional, sql


class Registry:
    """What every production module defines: the builders, and the functions taking SQL parameters."""

    def __init__(self, trees: dict[str, ast.AST]):
        self.builders: set[str] = set()
        self.params: dict[str, list[tuple[list[str], set[str]]]] = {}  # by name, for methods
        self.functions: dict[tuple[str, str], tuple[list[str], set[str]]] = {}  # (module, name) of module level
        self.attributes: set[str] = set()  # attributes declared `self.x: SQL` (every assignment is checked)
        plain: set[str] = set()
        for module, tree in trees.items():
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    init = node if not isinstance(node, ast.ClassDef) else next(
                        (f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
                    self.functions[module, node.name] = _sql_params(init) if init else ([], set())
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):  # a class's constructor takes its __init__'s parameters
                    for init in node.body:
                        if isinstance(init, ast.FunctionDef) and init.name == "__init__":
                            positional, sql = _sql_params(init)
                            if sql:
                                self.params.setdefault(node.name, []).append((positional, sql))
                if (isinstance(node, ast.AnnAssign) and _is_sql_type(node.annotation)
                        and isinstance(node.target, ast.Attribute)):
                    self.attributes.add(node.target.attr)
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("__"):
                    (self.builders if _is_builder(node) else plain).add(node.name)
                    positional, sql = _sql_params(node)
                    if sql:
                        self.params.setdefault(node.name, []).append((positional, sql))
        # a builder's name must mean a builder wherever it is called
        self.ambiguous = sorted(self.builders & plain)


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name_of(node.func)
    return None


class _Function:
    """The assignments of each local name in one function (module level counts as a function)."""

    def __init__(self, node: ast.AST):
        self.assigned: dict[str, list[ast.AST | None]] = {}
        if isinstance(node, COMPREHENSIONS):  # a comprehension's scope: its loop variables
            for gen in node.generators:
                self._bind_loop(gen.target, gen.iter)
            return
        for sub in _walk_own(node):
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    self._bind(target, sub.value)
            elif isinstance(sub, (ast.AnnAssign, ast.AugAssign)) and sub.value is not None:
                value = sub.value if isinstance(sub, ast.AnnAssign) else ast.BinOp(sub.target, ast.Add(), sub.value)
                self._bind(sub.target, value)
            elif isinstance(sub, ast.For):
                self._bind_loop(sub.target, sub.iter)
            elif isinstance(sub, (ast.With, ast.AsyncWith)):
                for item in sub.items:
                    if item.optional_vars is not None:
                        self._bind(item.optional_vars, None)
            elif isinstance(sub, ast.NamedExpr):
                self._bind(sub.target, sub.value)
            elif (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and isinstance(sub.func.value, ast.Name)
                  and sub.func.attr in ("append", "extend", "insert") and sub.args):
                # what goes into a local list is one of its assignments
                value = sub.args[-1]
                self.assigned.setdefault(sub.func.value.id, []).append(
                    value if sub.func.attr == "extend" else ast.List([value]))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg]:
                if arg is not None:  # a parameter is anything, unless typed SQL (checked at each call)
                    safe = _is_sql_type(arg.annotation) and arg not in (a.vararg, a.kwarg)
                    self.assigned.setdefault(arg.arg, []).append(ast.Constant("") if safe else None)

    def _bind(self, target: ast.AST, value: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            self.assigned.setdefault(target.id, []).append(value)
        elif isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.GeneratorExp, ast.ListComp)):
            for t in target.elts:  # a, b = (f(x) for x in ...): each is an element
                self._bind(t, value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = value.elts if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts) \
                else [None] * len(target.elts)
            for t, v in zip(target.elts, values, strict=True):
                self._bind(t, v)
        elif isinstance(target, ast.Starred):
            self._bind(target.value, None)

    def _bind_loop(self, target: ast.AST, iterable: ast.AST) -> None:
        base = iterable.func.value if isinstance(iterable, ast.Call) and isinstance(iterable.func, ast.Attribute) \
            and iterable.func.attr in ("items", "keys", "values") else iterable
        if ALL_CAPS.match(_name_of(base) or "") and not isinstance(base, ast.Call):
            for name in ast.walk(target):  # the elements of a constant written in the code
                if isinstance(name, ast.Name):
                    self.assigned.setdefault(name.id, []).append(ast.Constant(""))
            return
        if isinstance(target, ast.Tuple) and isinstance(iterable, (ast.Tuple, ast.List)) and all(
                isinstance(e, ast.Tuple) and len(e.elts) == len(target.elts) for e in iterable.elts):
            for row in iterable.elts:  # for a, b in ((x, y), ...): each name takes its column
                for t, v in zip(target.elts, row.elts, strict=True):
                    self._bind(t, v)
            return
        if isinstance(target, ast.Name):
            if isinstance(iterable, ast.Call) and _name_of(iterable) == "range":
                self.assigned.setdefault(target.id, []).append(ast.Constant(0))
            elif isinstance(iterable, (ast.Tuple, ast.List)) and all(
                    isinstance(e, ast.Constant) for e in iterable.elts):
                self.assigned.setdefault(target.id, []).extend(iterable.elts)
            else:
                self.assigned.setdefault(target.id, []).append(_Element(iterable))
        else:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    self.assigned.setdefault(name.id, []).append(_Element(iterable))


class _Element(ast.AST):
    """What a loop over `iterable` binds: safe when everything iterating it yields is safe."""

    _fields = ("iterable",)

    def __init__(self, iterable: ast.AST):
        super().__init__()
        self.iterable = iterable
        self.lineno = getattr(iterable, "lineno", 0)


def _walk_own(node: ast.AST, prune: tuple[type, ...] = (), quoted: bool = False):
    """The nodes of a function's body, without those of functions defined inside it (nor under `prune`,
    nor, with `quoted`, inside a call to q() or lit(): whatever text is built there ends up quoted)."""
    todo = list(ast.iter_child_nodes(node))
    while todo:
        sub = todo.pop()
        yield sub
        if quoted and isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name) and sub.func.id in QUOTERS:
            continue
        if not isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, *COMPREHENSIONS,
                                *prune)):
            todo.extend(ast.iter_child_nodes(sub))


class Checker:
    def __init__(self, source: str, filename: str, registry: Registry | None = None):
        self.filename = filename
        self.source = source
        self.tree = ast.parse(source, filename)
        self.module = _module_of(filename)
        self.registry = registry or Registry({self.module: self.tree})
        self.imports = {a.asname or a.name: n.module for n in self.tree.body if isinstance(n, ast.ImportFrom)
                        for a in n.names}
        self.problems: list[str] = []
        self._fstrings_checked = False
        # the inner additions of a chain a + b + c: the chain is checked once, from its outermost
        self._add_operands = {id(n.left) for n in ast.walk(self.tree)
                              if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add)}

    def run(self) -> list[str]:
        self._scope(self.tree, [_Function(self.tree)], sql_builder=False)
        return self.problems

    def _scope(self, node: ast.AST, scopes: list[_Function], sql_builder: bool) -> None:
        for sub in _walk_own(node, prune=(ast.Raise,), quoted=True):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, *COMPREHENSIONS)):
                self._scope(sub, [*scopes, _Function(sub)], sql_builder or _is_builder(sub))
            elif isinstance(sub, ast.Return) and sql_builder and sub.value is not None:
                self._require(sub.value, scopes, fstrings_checked=True)
            elif isinstance(sub, ast.Raise):
                continue  # an error message, not SQL (and not walked further)
            elif isinstance(sub, (ast.Assign, ast.AnnAssign)):
                targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
                if sub.value is not None and any(
                        isinstance(t, ast.Attribute) and t.attr in self.registry.attributes for t in targets):
                    self._require(sub.value, scopes)
            elif isinstance(sub, ast.ClassDef):
                self._scope(sub, scopes, sql_builder)
            elif isinstance(sub, ast.JoinedStr):
                if sql_builder or SQL_WORDS.search(_literal_text(sub)):
                    for value in sub.values:
                        if isinstance(value, ast.FormattedValue):
                            self._require(value, scopes)
            elif isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Add) and not self._inside_add(sub):
                parts = _add_chain(sub)
                literal = " ".join(p.value for p in parts if _is_str(p))
                if sql_builder and literal or SQL_WORDS.search(literal):
                    for part in parts:
                        if not _is_str(part) and not isinstance(part, ast.JoinedStr):
                            self._require(part, scopes)
            elif isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Mod) and _is_str(sub.left):
                if sql_builder or SQL_WORDS.search(sub.left.value):
                    args = sub.right.elts if isinstance(sub.right, ast.Tuple) else [sub.right]
                    for arg in args:
                        self._require(arg, scopes)
            elif (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Attribute) and sub.func.attr == "format"
                  and self._template_is_sql(sub.func.value, scopes, sql_builder)):
                for arg in [*sub.args, *(k.value for k in sub.keywords)]:
                    self._require(arg, scopes)
            if isinstance(sub, ast.Call):
                self._check_sql_arguments(sub, scopes)

    def _signatures(self, call: ast.Call) -> list[tuple[list[str], set[str]]]:
        """The parameters of the function called: the one a module defines or imports under the name
        called, or, for a method, every method so named."""
        if isinstance(call.func, ast.Name):
            name = call.func.id
            for key in ((self.module, name), (self.imports.get(name, ""), name)):
                if key in self.registry.functions:
                    return [self.registry.functions[key]]
        return self.registry.params.get(_name_of(call.func) or "", [])

    def _inside_add(self, node: ast.BinOp) -> bool:
        return id(node) in self._add_operands

    def _check_sql_arguments(self, call: ast.Call, scopes: list[_Function]) -> None:
        """Arguments passed to a parameter that takes SQL text must be safe."""
        signatures = self._signatures(call)
        for positional, sql in signatures:
            for name, arg in zip(positional, call.args, strict=False):
                if name in sql and not isinstance(arg, ast.Starred):
                    self._require(arg, scopes)
        for kw in call.keywords:
            if kw.arg is not None and (kw.arg.endswith("_sql") or any(kw.arg in sql for _, sql in signatures)):
                self._require(kw.value, scopes)

    def _template_is_sql(self, template: ast.AST, scopes: list[_Function], sql_builder: bool) -> bool:
        if _is_str(template):
            return sql_builder or bool(SQL_WORDS.search(template.value))
        # a template kept in a constant (WINDOWS["x"][0].format(d=...)) is SQL when it is named so or in a builder
        return sql_builder or _name_of(_base(template)) is not None and ALL_CAPS.match(_name_of(_base(template)) or "")

    def _require(self, node: ast.AST, scopes: list[_Function], fstrings_checked: bool = False) -> None:
        # a builder's f-strings are checked where they stand: a return reports what else it holds
        self._fstrings_checked = fstrings_checked
        if not self._safe(node, scopes, set()):
            expr = ast.unparse(node.value if isinstance(node, ast.FormattedValue) else node)
            self.problems.append(f"{self.filename}:{node.lineno}: {expr}")

    def _safe(self, node: ast.AST, scopes: list[_Function], seen: set[str], keys: bool = False) -> bool:
        """Whether `node` is SQL-safe; with `keys`, whether all that iterating over it yields is."""
        if isinstance(node, _Element):
            it = node.iterable
            if isinstance(it, ast.Call) and isinstance(it.func, ast.Attribute) and it.func.attr in ("items", "keys",
                                                                                                      "values"):
                return self._safe(it.func.value, scopes, seen, keys=it.func.attr != "values") and (
                    it.func.attr != "items" or self._safe(it.func.value, scopes, seen))
            if isinstance(it, ast.Call) and _name_of(it.func) in ("enumerate", "zip", "reversed", "sorted", "list"):
                return all(self._safe(_Element(a), scopes, seen) for a in it.args)
            return self._safe(it, scopes, seen, keys=True)
        if isinstance(node, ast.FormattedValue):
            spec = node.format_spec
            if spec is not None and isinstance(spec, ast.JoinedStr) and all(
                    isinstance(v, ast.Constant) for v in spec.values) and NUMBER_FORMAT.match(_literal_text(spec)):
                return True  # a number format refuses anything but a number
            if node.conversion == ord("r"):  # the repr of a number is a SQL number; of anything else, not
                return self._numeric(node.value, scopes)
            return node.conversion == -1 and (self._safe(node.value, scopes, seen) or self._numeric(node.value, scopes))
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (int, float, str)) or node.value is None
        if isinstance(node, ast.JoinedStr):
            if self._fstrings_checked:
                return True
            return all(self._safe(v, scopes, seen) for v in node.values if isinstance(v, ast.FormattedValue))
        if isinstance(node, ast.BinOp):  # text joined, or numbers computed, from safe parts
            return self._safe(node.left, scopes, seen) and self._safe(node.right, scopes, seen)
        if isinstance(node, ast.Compare):  # True or False
            return all(self._safe(v, scopes, seen) for v in [node.left, *node.comparators])
        if isinstance(node, ast.BoolOp):
            return all(self._safe(v, scopes, seen) for v in node.values)
        if isinstance(node, ast.IfExp):
            return self._safe(node.body, scopes, seen) and self._safe(node.orelse, scopes, seen)
        if isinstance(node, (ast.Tuple, ast.List)):
            return all(self._safe(e, scopes, seen) for e in node.elts)
        if isinstance(node, ast.Starred):
            return self._safe(node.value, scopes, seen)
        if isinstance(node, (ast.ListComp, ast.GeneratorExp)):
            return self._safe_elements(node, scopes, seen)
        if isinstance(node, ast.DictComp):  # its values, or its keys when iterated over
            return self._safe_elements(ast.ListComp(node.key if keys else node.value, node.generators), scopes, seen)
        if isinstance(node, ast.Dict):
            return all(k is not None and self._safe(k, scopes, seen) for k in node.keys) if keys else all(
                self._safe(v, scopes, seen) for v in node.values)
        if isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Tuple, ast.List)):
            return self._safe(node.value, scopes, seen)
        if isinstance(node, ast.Call):
            name = _name_of(node.func)
            if isinstance(node.func, ast.Name) and name in QUOTERS | SAFE_CALLS:
                return True
            if isinstance(node.func, ast.Attribute) and node.func.attr == "join" and _is_str(node.func.value):
                return len(node.args) == 1 and self._safe_elements(node.args[0], scopes, seen)
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("replace", "strip", "lower", "upper"):
                return self._safe(node.func.value, scopes, seen) and all(  # a safe text, edited with safe parts
                    self._safe(a, scopes, seen) for a in node.args[1:])
            if (isinstance(node.func, ast.Attribute) and node.func.attr == "format"
                    and (ALL_CAPS.match(_name_of(_base(node.func.value)) or "")
                         or self._safe(node.func.value, scopes, seen))):
                # a safe template (or one kept in a constant written in the code), filled with safe parts
                return all(self._safe(a, scopes, seen) for a in [*node.args, *(k.value for k in node.keywords)])
            return name is not None and (name.endswith("_sql") or name in self.registry.builders)
        if isinstance(node, ast.Attribute):
            return node.attr.endswith("_sql") or bool(ALL_CAPS.match(node.attr)) or node.attr in self.registry.attributes
        if isinstance(node, ast.Subscript):
            return self._safe(node.value, scopes, seen)  # an element of a safe collection
        if isinstance(node, ast.Name):
            if node.id.endswith("_sql") or ALL_CAPS.match(node.id):
                return True
            if node.id in seen:
                return True  # a name built from itself (s += ...) is as safe as its other assignments
            for scope in reversed(scopes):
                if node.id in scope.assigned:
                    values = scope.assigned[node.id]
                    return all(v is not None and self._safe(v, scopes, seen | {node.id}, keys) for v in values)
            return False
        return False

    def _numeric(self, node: ast.AST, scopes: list[_Function], seen: frozenset[str] = frozenset()) -> bool:
        if isinstance(node, ast.Constant):
            return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
        if isinstance(node, ast.Call):
            return isinstance(node.func, ast.Name) and node.func.id in ("int", "float", "len")
        if isinstance(node, ast.BinOp):
            return self._numeric(node.left, scopes, seen) and self._numeric(node.right, scopes, seen)
        if isinstance(node, ast.Name):
            if node.id in seen:
                return True  # n += 1: as numeric as n's other assignments
            for scope in reversed(scopes):
                if node.id in scope.assigned:
                    return all(v is not None and self._numeric(v, scopes, seen | {node.id})
                               for v in scope.assigned[node.id])
        return False

    def _safe_elements(self, node: ast.AST, scopes: list[_Function], seen: set[str]) -> bool:
        if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
            inner = _Function(ast.Module(body=[], type_ignores=[]))
            for gen in node.generators:
                inner._bind_loop(gen.target, gen.iter)
            return self._safe(node.elt, [*scopes, inner], seen)
        return self._safe(node, scopes, seen)


def _add_chain(node: ast.AST) -> list[ast.AST]:
    """The operands of a + b + c."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _add_chain(node.left) + _add_chain(node.right)
    return [node]


def _base(node: ast.AST) -> ast.AST:
    while isinstance(node, ast.Subscript):
        node = node.value
    return node


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _literal_text(node: ast.JoinedStr) -> str:
    return "".join(v.value for v in node.values if isinstance(v, ast.Constant))


def _module_of(filename: str) -> str:
    return filename.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def check_source(source: str, filename: str = "<snippet>") -> list[str]:
    return Checker(textwrap.dedent(source), filename).run()


def production_modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def check_production() -> list[str]:
    sources = {str(path.relative_to(ROOT)): path.read_text() for path in production_modules()}
    registry = Registry({_module_of(name): ast.parse(text, name) for name, text in sources.items()})
    problems = [f"{name}: a builder's name is also a plain function's" for name in registry.ambiguous]
    for name, text in sources.items():
        problems += Checker(text, name, registry).run()
    return problems


def test_no_value_is_interpolated_into_sql_text():
    problems = check_production()
    assert not problems, f"{len(problems)} values interpolated into SQL text:\n" + "\n".join(problems)


def test_the_checker_finds_what_it_must():
    # a raw path in read_csv, a date, a parameter in WHERE, a % format and a .format() all fail
    assert check_source("""
        def load(con, path):
            con.execute(f"SELECT * FROM read_csv('{path}', header=true)")
    """) == ["<snippet>:3: path"]
    assert len(check_source("""
        def rows(con, source, d):
            con.execute(f"SELECT * FROM raw.{source} WHERE as_of = DATE '{d}'")
            con.execute("DELETE FROM t WHERE id = '%s'" % d)
            con.execute("COPY t TO '{}'".format(d))
    """)) == 4
    # a loop over data, a join over raw names and a local built from a parameter fail too
    assert len(check_source("""
        def load(con, names, where):
            cols = ", ".join(n for n in names)
            w = f"x = {where}"
            for n in names:
                con.execute(f"SELECT {n}, {cols} FROM t WHERE {w}")
    """)) == 3
    # inside a *_sql builder every f-string is SQL, keywords or not
    assert check_source("""
        def cond_sql(col):
            return f"{col} IS NULL"
    """) == ["<snippet>:3: col"]
    # a builder's return, and what a call passes to a parameter typed SQL, are checked
    assert sorted(check_source("""
        from valuecredit.sqltext import SQL

        def rows(source: str, d: SQL = "as_of") -> SQL:
            return source

        def night(con, business_date):
            con.execute(f"SELECT * FROM {rows('tax', business_date)}")
            rows("tax", d=business_date.isoformat())
    """)) == ["<snippet>:5: source", "<snippet>:8: business_date", "<snippet>:9: business_date.isoformat()"]
    # text added to SQL is checked like text interpolated into it
    assert check_source("""
        def drop(con, table):
            con.execute("DROP TABLE " + table + " CASCADE")
    """) == ["<snippet>:3: table"]
    # str() or repr() do not make a value safe
    assert len(check_source("""
        def f(con, x):
            con.execute(f"SELECT {str(x)}, {x!r}")
    """)) == 2


def test_the_checker_accepts_what_is_safe():
    assert check_source("""
        from valuecredit.sqltext import SQL, lit, q

        LIMIT = 5

        def window(source: str, d: SQL = "as_of") -> SQL:
            return f"SELECT * FROM {q(source)} WHERE day <= {d}"

        def night(con, day):
            con.execute(f"SELECT * FROM ({window('tax', d=lit(day))}) UNION ALL {window('power')}")

        def load(con, path, name, names, n, keys_sql, self):
            cols = ", ".join(q(c) for c in names)
            key = q(name) if n else "uscc"
            cond = f"{q(name)} IS NULL"
            for i in range(3):
                pass
            for kind in ("a", "b"):
                con.execute(f"SELECT {q(name)}, {cols}, {key}, {i}, {kind} FROM t WHERE {cond} LIMIT {LIMIT}")
            con.execute(f"COPY (SELECT 1) TO {lit(path)}")
            con.execute(f"SELECT {keys_sql}, {self.where_sql}, {int(n)}, {n:d}, {len(names)} FROM t")
            con.execute("SELECT * FROM read_csv(?, header=true)", [path])
            count = 0
            for _ in names:
                count += 1
            con.execute(f"SELECT * FROM t LIMIT {count}")
    """) == []


def test_type_name_takes_the_types_describe_gives_and_refuses_anything_else():
    import duckdb

    from valuecredit.sqltext import type_name

    con = duckdb.connect()
    con.execute("""CREATE TABLE t AS SELECT 1::TINYINT a, 1.5::DECIMAL(38,6) b, 'x' c, DATE '2020-01-01' d, now() e,
                   [1, 2] f, {'select': 1, 'Bank': 'x', 'a b': [1.0]} g, MAP {'k': 1} h, [1, 2]::INTEGER[2] i,
                   [{'maturity_on': DATE '2026-01-01', 'bank_id': 'B01'}] j, INTERVAL 1 DAY k, uuid() l""")
    for _, kind, *_ in con.execute("DESCRIBE t").fetchall():
        assert con.execute(f"SELECT CAST(NULL AS {type_name(kind)}) IS NULL").fetchone() == (True,), kind
    for text in ("BOOLEAN OR TRUE", "VARCHAR IS NULL", "INTEGER NOT NULL", "STRUCT(a INTEGER DEFAULT 1)", '"NULL"',
                 'STRUCT("a" INTEGER); DROP TABLE t', "STRUCT(a INTEGER), b INTEGER)", "DECIMAL(٣,2)", "MAP(INTEGER)",
                 'STRUCT("a"" INTEGER)', "INTEGER[1 OR 1]", "ENUM('a', 'b')", "VARCHAR -- x"):
        with pytest.raises(ValueError, match="not a column type"):
            type_name(text)

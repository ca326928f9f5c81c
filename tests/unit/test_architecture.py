"""The folder tree is the architecture: layering and purity rules, checked on the source with ``ast``.

Layers, low to high (a package may import its own layer and lower ones, never a higher one)::

    encoding < crypto < ledger < modules < world < models < provenance < engines < messaging < verify
             < sim < node < web < agent < cluster < scenarios < demo < bench < cli

``autarky/config.py`` belongs to the ``node`` layer. ``autarky/__init__.py`` (the public facade) may
import anything, and so counts as the top: a layered package that imports ``autarky`` itself, or a
name from it that is not a subpackage, imports the top layer. Imports are found wherever they are:
at module level, inside functions, under ``if TYPE_CHECKING``, relative (``from ..node import x``), and
``importlib.import_module("autarky.…")`` / ``__import__`` with a constant name.

The core (``encoding``, ``crypto`` except ``crypto/keystore.py``, ``ledger``, ``modules``) must be a pure,
deterministic function of its inputs, the same on every replica. So it may not:

* import ``time``, ``datetime``, ``random``, ``secrets``, ``asyncio``, ``os``, ``socket``, ``threading``,
  ``sqlite3`` or ``uuid`` (clocks, randomness, I/O and concurrency belong to the edges and are injected);
* contain a float literal, call ``float(...)``, or use true division ``/`` (integer code uses ``//``);
* iterate over a set in an order-dependent way: a ``for`` loop or comprehension over ``set(...)``,
  ``frozenset(...)``, a set display ``{…}``, a set comprehension, a set operation (``a | b``) on those,
  or a name that its scope assigns one of those to or annotates as a set (also ``self.x`` for class
  attributes annotated as sets); the same for ``list(...)``, ``tuple(...)`` and ``enumerate(...)`` of
  such a value. String hashing is randomised per process, so set order differs between replicas;
  ``sorted(...)`` first. Dicts are insertion-ordered, so ``.keys()``, ``.values()``, ``.items()`` are fine.

Key generation in ``crypto`` draws randomness through PyNaCl (libsodium), which is allowed; only the
Python modules above are banned. Each failure names ``file:line``.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
SOURCE_ROOT = REPOSITORY / "src"
PACKAGE_ROOT = SOURCE_ROOT / "autarky"

LAYERS = (
    "encoding",
    "crypto",
    "ledger",
    "modules",
    "world",  # the simulated physical world (numpy): no ledger writes, no I/O
    "models",  # embedded decision models and their content-addressed files
    "provenance",  # off-chain decision records and their checks
    "engines",
    "messaging",
    "verify",
    "sim",
    "node",
    "web",
    "agent",  # machines as agents: over a node's HTTP API or an in-process chain
    "cluster",
    "scenarios",  # whole economies of agents on a virtual clock (autarky sim run)
    "demo",
    "bench",
    "cli",
)
FACADE = "<autarky facade>"
RANK = {**{layer: rank for rank, layer in enumerate(LAYERS)}, FACADE: len(LAYERS)}
TOP_LEVEL_MODULES = {"config": "node"}  # single-file modules directly under autarky/, by layer

CORE_LAYERS = frozenset({"encoding", "crypto", "ledger", "modules"})
PURITY_EXEMPT = frozenset({"crypto/keystore.py"})  # writes files; not used by the executor
# Narrow exemptions: one file, one banned module, and why it keeps the core deterministic.
IMPORT_EXEMPT = {
    # A per-thread cache of reusable cbor2 encoders: same bytes out, no shared mutable state.
    "encoding/encoder_cache.py": frozenset({"threading"}),
}
BANNED_MODULES = frozenset(
    {"time", "datetime", "random", "secrets", "asyncio", "os", "socket", "threading", "sqlite3", "uuid"}
)

_SET_CONSTRUCTORS = frozenset({"set", "frozenset"})
_SET_ANNOTATIONS = frozenset({"set", "frozenset", "Set", "FrozenSet", "AbstractSet", "MutableSet"})
_ORDER_KEEPING_CALLS = frozenset({"list", "tuple", "enumerate"})
_SET_OPERATORS = (ast.BitOr, ast.BitAnd, ast.Sub, ast.BitXor)


@dataclass(frozen=True)
class SourceFile:
    relative: str  # path under src/autarky, e.g. "ledger/tx.py"
    module: str  # dotted name, e.g. "autarky.ledger.tx"
    is_package: bool
    tree: ast.Module

    @property
    def layer(self) -> str | None:
        return layer_of_file(self.relative)

    def where(self, node: ast.AST) -> str:
        return f"src/autarky/{self.relative}:{getattr(node, 'lineno', 0)}"


def parse(relative: str, text: str) -> SourceFile:
    parts = relative.removesuffix(".py").split("/")
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return SourceFile(relative, ".".join(["autarky", *parts]), is_package, ast.parse(text, relative))


@functools.cache
def source_files() -> tuple[SourceFile, ...]:
    paths = sorted(PACKAGE_ROOT.rglob("*.py"))
    assert paths, f"no Python files under {PACKAGE_ROOT}"
    return tuple(
        parse(path.relative_to(PACKAGE_ROOT).as_posix(), path.read_text(encoding="utf-8")) for path in paths
    )


# --- layers ------------------------------------------------------------------------------------------


def layer_of_file(relative: str) -> str | None:
    """The layer of a file under src/autarky; FACADE for autarky/__init__.py; None if unassigned."""
    first = relative.split("/")[0]
    if "/" in relative:
        return first if first in RANK else None
    if relative == "__init__.py":
        return FACADE
    return TOP_LEVEL_MODULES.get(first.removesuffix(".py"))


def layer_of_module(dotted: str) -> str | None:
    """The layer of an imported autarky module; FACADE for ``autarky`` itself; None if unassigned."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return FACADE
    if parts[1] in LAYERS:
        return parts[1]
    return TOP_LEVEL_MODULES.get(parts[1])


def imported_modules(source: SourceFile) -> Iterator[tuple[ast.AST, str]]:
    """Every (node, absolute dotted name) the file imports, anywhere in it."""
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = _absolute_from(source, node)
            if base == "autarky":
                # ``from autarky import ledger`` imports a subpackage; ``from autarky import X`` the facade.
                for alias in node.names:
                    yield node, f"autarky.{alias.name}" if layer_of_module(f"autarky.{alias.name}") else base
            else:
                yield node, base
        elif isinstance(node, ast.Call) and _is_dynamic_import(node):
            yield node, node.args[0].value  # type: ignore[attr-defined]


def _absolute_from(source: SourceFile, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = source.module.split(".") if source.is_package else source.module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_dynamic_import(node: ast.Call) -> bool:
    function = node.func
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
    if name not in ("import_module", "__import__") or not node.args:
        return False
    first = node.args[0]
    return isinstance(first, ast.Constant) and isinstance(first.value, str)


def layering_violations(source: SourceFile) -> list[str]:
    layer = source.layer
    if layer is None or layer == FACADE:
        return []
    found = []
    for node, target in imported_modules(source):
        if target != "autarky" and not target.startswith("autarky."):
            continue
        target_layer = layer_of_module(target)
        if target_layer is None:
            found.append(f"{source.where(node)} imports {target}, which has no layer: add it to LAYERS")
        elif RANK[target_layer] > RANK[layer]:
            found.append(
                f"{source.where(node)} imports {target} ({target_layer}) from the lower layer {layer}"
            )
    return found


# --- purity ------------------------------------------------------------------------------------------


def is_core(source: SourceFile) -> bool:
    return source.layer in CORE_LAYERS and source.relative not in PURITY_EXEMPT


def purity_violations(source: SourceFile) -> list[str]:
    found = []
    allowed = IMPORT_EXEMPT.get(source.relative, frozenset())
    for node, target in imported_modules(source):
        if target.split(".")[0] in BANNED_MODULES and target.split(".")[0] not in allowed:
            found.append(
                f"{source.where(node)} imports {target}: no clock, randomness, I/O or threads in the core"
            )
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float | complex):
            found.append(f"{source.where(node)} float literal {node.value!r}: use integers in base units")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float":
            found.append(f"{source.where(node)} calls float(): use integers in base units")
        elif isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
            found.append(f"{source.where(node)} true division '/': use '//' (and say how it rounds)")
    found.extend(SetIterationFinder(source).run())
    return found


def _annotation_is_set(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    if isinstance(annotation, ast.Subscript):
        annotation = annotation.value
    if isinstance(annotation, ast.Attribute):
        return annotation.attr in _SET_ANNOTATIONS
    if isinstance(annotation, ast.Name):
        return annotation.id in _SET_ANNOTATIONS
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):  # "set[str]"
        return annotation.value.split("[")[0].split(".")[-1] in _SET_ANNOTATIONS
    return False


class SetIterationFinder:
    """Finds order-dependent iteration over sets, tracking set-valued names per lexical scope."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.found: list[str] = []
        self.set_attributes = {
            statement.target.attr if isinstance(statement.target, ast.Attribute) else statement.target.id
            for node in ast.walk(source.tree)
            if isinstance(node, ast.ClassDef)
            for statement in node.body
            if isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name | ast.Attribute)
            and _annotation_is_set(statement.annotation)
        }

    def run(self) -> list[str]:
        self._scope(self.source.tree, frozenset())
        return self.found

    def _scope(self, scope: ast.AST, outer: frozenset[str]) -> None:
        nodes = list(self._own_nodes(scope))
        names = self._set_names(scope, nodes, outer)
        for node in nodes:
            if isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
                self._check(node, node.iter, names)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in _ORDER_KEEPING_CALLS
                and node.args
            ):
                self._check(node, node.args[0], names)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                # Names bound in a class body are not visible inside its methods.
                self._scope(node, outer if isinstance(scope, ast.ClassDef) else names)

    def _set_names(self, scope: ast.AST, nodes: list[ast.AST], outer: frozenset[str]) -> frozenset[str]:
        """Names bound in this scope only ever to sets, plus unshadowed set names of enclosing scopes.

        A name counts as a set when it is annotated as one, or when every value assigned to it is one:
        ``x = set(a)`` then ``x = sorted(x)`` is not flagged, which keeps false alarms away.
        """
        values: dict[str, list[ast.expr]] = {}
        annotated: set[str] = set()
        if isinstance(scope, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            arguments = scope.args
            for argument in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                values.setdefault(argument.arg, [])
                if _annotation_is_set(argument.annotation):
                    annotated.add(argument.arg)
        for node in nodes:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        values.setdefault(target.id, []).append(node.value)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                values.setdefault(node.target.id, [])
                if node.value is not None:
                    values[node.target.id].append(node.value)
                if _annotation_is_set(node.annotation):
                    annotated.add(node.target.id)
        names = (outer - set(values)) | annotated
        while True:  # a fixed point: ``b = a | c`` is a set once ``a`` is known to be one
            grown = names | {
                name
                for name, assigned in values.items()
                if assigned and all(self._is_set(value, names) for value in assigned)
            }
            if grown == names:
                return names
            names = grown

    @staticmethod
    def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
        """Nodes of this scope, including nested scope nodes themselves but not their bodies."""
        stack = list(ast.iter_child_nodes(scope))
        while stack:
            node = stack.pop()
            yield node
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
                stack.extend(ast.iter_child_nodes(node))

    def _is_set(self, expression: ast.expr, names: frozenset[str]) -> bool:
        if isinstance(expression, ast.Set | ast.SetComp):
            return True
        if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name):
            return expression.func.id in _SET_CONSTRUCTORS
        if isinstance(expression, ast.Name):
            return expression.id in names
        if isinstance(expression, ast.Attribute):
            is_self = isinstance(expression.value, ast.Name) and expression.value.id in ("self", "cls")
            return is_self and expression.attr in self.set_attributes
        if isinstance(expression, ast.BinOp) and isinstance(expression.op, _SET_OPERATORS):
            return self._is_set(expression.left, names) or self._is_set(expression.right, names)
        return False

    def _check(self, node: ast.AST, iterated: ast.expr, names: frozenset[str]) -> None:
        if self._is_set(iterated, names):
            where = self.source.where(iterated if isinstance(node, ast.comprehension) else node)
            self.found.append(f"{where} iterates over a set ({ast.unparse(iterated)}): sort it first")


# --- the tests ---------------------------------------------------------------------------------------


def test_every_file_has_a_layer() -> None:
    unassigned = [f"src/autarky/{source.relative}" for source in source_files() if source.layer is None]
    assert unassigned == [], "files outside every layer; place them in LAYERS or TOP_LEVEL_MODULES"


def test_lower_layers_never_import_higher_ones() -> None:
    violations = [violation for source in source_files() for violation in layering_violations(source)]
    assert violations == [], "\n".join(violations)


def test_core_is_pure() -> None:
    core = [source for source in source_files() if is_core(source)]
    assert any(source.relative == "ledger/__init__.py" for source in core)
    violations = [violation for source in core for violation in purity_violations(source)]
    assert violations == [], "\n".join(violations)


def prev_hash_reads(source: SourceFile) -> list[str]:
    """Reads of ``.prev_hash`` in a module: execution must not depend on the previous block's hash.

    ``ledger.executor.apply_block`` promises it (only the header carries it), and
    ``autarky.node.commit_worker`` relies on it to execute a block while the previous one's state
    root is still being computed on another core.
    """
    return [
        f"{source.where(node)} reads prev_hash"
        for node in ast.walk(source.tree)
        if isinstance(node, ast.Attribute) and node.attr == "prev_hash"
    ]


def test_modules_never_read_the_previous_block_hash() -> None:
    modules = [
        source for source in source_files() if source.layer == "modules" and "harness" not in source.relative
    ]
    assert len(modules) > 20
    violations = [violation for source in modules for violation in prev_hash_reads(source)]
    assert violations == [], "\n".join(violations)
    assert prev_hash_reads(parse("modules/x/handlers.py", "def f(ctx):\n    return ctx.env.prev_hash\n"))


# --- the checker checks what it claims (a lint that finds nothing proves nothing) --------------------

BAD = [
    ("ledger/x.py", "import autarky.node.storage"),
    ("ledger/x.py", "def f():\n    from autarky.engines import embedded\n"),
    ("ledger/x.py", "from ..node import storage"),
    ("ledger/x.py", "from autarky import node"),
    ("ledger/x.py", "from autarky import Machine"),
    ("ledger/x.py", "import autarky"),
    ("ledger/x.py", "from autarky.config import Settings"),
    ("ledger/x.py", "import importlib\nimportlib.import_module('autarky.web.app')"),
    ("crypto/x.py", "from autarky.ledger import tx"),
    ("encoding/x.py", "from autarky.crypto import sha256"),
    ("ledger/x.py", "from autarky.agent import Machine"),
    ("ledger/x.py", "import os.path"),
    ("ledger/x.py", "from time import monotonic"),
    ("modules/bank/x.py", "def f():\n    import random\n"),
    ("crypto/x.py", "import secrets"),
    ("ledger/x.py", "FEE = 0.5"),
    ("ledger/x.py", "def f(a):\n    return float(a)\n"),
    ("ledger/x.py", "def f(a, b):\n    return a / b\n"),
    ("ledger/x.py", "def f(a):\n    a /= 2\n    return a\n"),
    ("ledger/x.py", "def f(a):\n    for x in set(a):\n        print(x)\n"),
    ("ledger/x.py", "for x in {1, 2}:\n    print(x)\n"),
    ("ledger/x.py", "def f(a):\n    return [x for x in {y for y in a}]\n"),
    ("ledger/x.py", "def f(a):\n    seen = set(a)\n    return [x for x in seen]\n"),
    ("ledger/x.py", "def f(a: frozenset[str]):\n    for x in a:\n        print(x)\n"),
    ("ledger/x.py", "def f(a):\n    s: set[int] = set()\n    return list(s)\n"),
    ("ledger/x.py", "def f(a, b):\n    return tuple(set(a) | set(b))\n"),
    (
        "ledger/x.py",
        "class C:\n    members: frozenset[str]\n    def f(self):\n        return [m for m in self.members]\n",
    ),
    ("ledger/x.py", "S = frozenset({1})\ndef f():\n    for x in S:\n        print(x)\n"),
]

GOOD = [
    (
        "ledger/x.py",
        "from autarky.crypto.keys import verify_raw\nfrom autarky.encoding import canonical_encode",
    ),
    ("ledger/x.py", "from . import tx\nfrom .state import Overlay"),
    ("ledger/x.py", "from autarky import crypto"),
    ("node/x.py", "from autarky.config import Settings\nimport os\nimport time"),
    ("cli/x.py", "import autarky.web\nimport autarky.node"),
    ("crypto/keystore.py", "import os\nfrom pathlib import Path\np = Path('a') / 'b'"),
    ("ledger/x.py", "def f(a, b):\n    return a // b\n"),
    ("ledger/x.py", "def f(a):\n    for x in sorted(set(a)):\n        print(x)\n"),
    ("ledger/x.py", "def f(d):\n    return [k for k, v in d.items()] + list(d.values())\n"),
    ("ledger/x.py", "ALLOWED = frozenset({1, 2})\ndef f(x):\n    return x in ALLOWED\n"),
    ("ledger/x.py", "def f(a):\n    seen = set(a)\n    return len(seen)\n"),
    ("ledger/x.py", "def f(a):\n    keys = set(a)\n    keys = sorted(keys)\n    return [k for k in keys]\n"),
    ("ledger/x.py", "class C:\n    s = {1}\n    def f(self, s):\n        return list(s)\n"),
    (
        "ledger/x.py",
        "def f(a):\n    seen = set(a)\n    def g(seen):\n        return list(seen)\n    return g\n",
    ),
]


def _all_violations(relative: str, text: str) -> list[str]:
    source = parse(relative, text)
    return layering_violations(source) + (purity_violations(source) if is_core(source) else [])


@pytest.mark.parametrize(("relative", "text"), BAD)
def test_checker_catches(relative: str, text: str) -> None:
    assert _all_violations(relative, text), f"not caught in {relative}:\n{text}"


@pytest.mark.parametrize(("relative", "text"), GOOD)
def test_checker_allows(relative: str, text: str) -> None:
    assert _all_violations(relative, text) == []

"""The library's layout rules, checked on the source (no imports run).

Packages follow the data: data -> features -> sequences -> models -> training -> evaluation -> plots -> realtime and
inference -> experiments (and cloud beside it) -> cli. A module imports only from its own layer or lower ones, the
module graph has no cycle, and nothing in the library imports ``experiments`` (only the command line does).
``docs/ARCHITECTURE.md`` draws it. One exception (:data:`LAZY_FACADE`): the package root's ``__getattr__`` loads
``emotion_lib.inference`` on first use of ``emotion_lib.predict``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "emotion_lib"

LAYERS = (
    ("__init__", "colab", "labels", "logs", "options", "paths", "utils"),
    ("data",),
    ("features",),
    ("sequences",),
    ("models",),
    ("training",),
    ("evaluation",),
    ("plots",),
    ("realtime", "inference"),
    ("cloud", "experiments"),
    ("cli", "__main__"),
)
"""Top-level names of ``emotion_lib`` by layer, lowest first."""

LAZY_FACADE = ("emotion_lib", "emotion_lib.inference")
"""The one allowed upward import: ``(importer, imported)``. The package root's module-level ``__getattr__`` imports
``emotion_lib.inference`` when ``emotion_lib.predict`` is first used, so ``import emotion_lib`` stays light. Only that
module, only inside that function: the same import anywhere else (at the root's top level, in another module) or
another module imported there is an ordinary edge."""

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
LONG_FUNCTION_MARK = "# long:"
"""A function may run past the limit when the line above its ``def`` gives the reason after this mark."""


def layer_of(module: str) -> int:
    """Layer index of a dotted module name inside ``emotion_lib``; a package's ``__main__`` (a ``python -m`` wrapper
    of the command line) sits with the command line."""
    top = module.split(".")[1] if "." in module else "__init__"
    if module.endswith(".__main__"):
        top = "cli"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"{module}: its top-level name {top!r} is in no layer of tests/test_architecture.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def library_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(path: Path, modules: dict[str, Path], lazy_facade: str | None = None) -> set[str]:
    """Every ``emotion_lib`` module imported anywhere in the file (top level or inside functions), except under
    ``if TYPE_CHECKING:``: those imports never run, they only name types for annotations. With ``lazy_facade`` (a
    module name), an import of exactly that module inside the file's top-level ``__getattr__`` is left out too."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for inner in ast.walk(node)
    }
    in_getattr = {
        id(inner)
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
        for inner in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        lazy = {lazy_facade} if lazy_facade and id(node) in in_getattr else set()
        found |= {name for name in names if name in modules and name not in lazy}
    return found


def module_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules ``name`` imports (itself left out), with the :data:`LAZY_FACADE` exception applied."""
    facade = LAZY_FACADE[1] if name == LAZY_FACADE[0] else None
    return imported_modules(path, modules, facade) - {name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = library_modules()
    return {name: module_imports(name, path, modules) for name, path in modules.items()}


def test_every_module_has_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_no_upward_import(graph):
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in graph.items()
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "imports against the data flow:\n" + "\n".join(upward)


def test_nothing_but_the_command_line_imports_experiments(graph):
    """Not even ``cloud``, which shares the layer of ``experiments``."""
    experiments = LAYERS.index(("cloud", "experiments"))
    importers = [
        f"{module} imports {target}"
        for module, targets in graph.items()
        for target in targets
        if target.startswith("emotion_lib.experiments")
        and not module.startswith("emotion_lib.experiments")
        and layer_of(module) <= experiments
    ]
    assert not importers, "\n".join(importers)


def test_no_import_cycle(graph):
    """Depth-first search over the module graph (package ``__init__`` re-exports of their own modules excepted)."""
    state: dict[str, str] = {}
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if target.startswith(module + "."):
                continue  # a package's __init__ re-exporting its own modules is not a cycle
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_modules_and_functions_stay_short():
    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        if len(lines) > MAX_MODULE_LINES:
            too_long.append(f"{path.relative_to(PACKAGE.parent)}: {len(lines)} lines > {MAX_MODULE_LINES}")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - node.lineno + 1
            reason = start >= 2 and lines[start - 2].strip().startswith(LONG_FUNCTION_MARK)
            if length > MAX_FUNCTION_LINES and not reason:
                too_long.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, "too long (split it, or give the reason after '# long:' above the def):\n" + "\n".join(
        too_long
    )


def test_the_rules_catch_what_they_should(tmp_path):
    """The checks above fail on an upward import and on a cycle (they can fail)."""
    modules = {"emotion_lib.data.a": tmp_path / "a.py", "emotion_lib.features.b": tmp_path / "b.py"}
    modules["emotion_lib.data.a"].write_text("from emotion_lib.features.b import x\n")
    modules["emotion_lib.features.b"].write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import emotion_lib.sequences.c\n"
        "def f():\n    import emotion_lib.data.a\n"
    )
    modules["emotion_lib.sequences.c"] = tmp_path / "c.py"
    modules["emotion_lib.sequences.c"].write_text("")
    graph = {name: imported_modules(path, modules) - {name} for name, path in modules.items()}
    assert graph["emotion_lib.data.a"] == {"emotion_lib.features.b"}
    assert graph["emotion_lib.features.b"] == {"emotion_lib.data.a"}  # the type-only import is not an edge
    with pytest.raises(AssertionError, match="imports against the data flow"):
        test_no_upward_import(graph)
    with pytest.raises(AssertionError, match="import cycles"):
        test_no_import_cycle(graph)


def test_the_lazy_facade_exception_is_narrow(tmp_path):
    """Only the root's ``__getattr__`` may import ``emotion_lib.inference``: the same import at the root's top level,
    in another module's ``__getattr__``, or of another module in the root's ``__getattr__`` is still caught."""
    lazy = "def __getattr__(name):\n    from emotion_lib import inference\n    return inference\n"
    files = {
        "emotion_lib": lazy,
        "emotion_lib.labels": "import emotion_lib.inference\n",
        "emotion_lib.data.a": lazy,
        "emotion_lib.utils": "def __getattr__(name):\n    import emotion_lib.experiments\n",
        "emotion_lib.inference": "",
        "emotion_lib.experiments": "",
    }
    modules = {name: tmp_path / f"{name}.py" for name in files}
    for name, text in files.items():
        modules[name].write_text(text)
    graph = {name: module_imports(name, path, modules) for name, path in modules.items()}
    assert graph["emotion_lib"] == set()
    assert graph["emotion_lib.labels"] == {"emotion_lib.inference"}
    assert graph["emotion_lib.data.a"] == {"emotion_lib", "emotion_lib.inference"}  # the root, then its module
    assert graph["emotion_lib.utils"] == {"emotion_lib.experiments"}
    with pytest.raises(AssertionError, match=r"emotion_lib.data.a \(layer 1\) imports emotion_lib.inference"):
        test_no_upward_import(graph)
    modules["emotion_lib"].write_text("import emotion_lib.inference\n" + lazy)  # at the top level: an edge
    assert module_imports("emotion_lib", modules["emotion_lib"], modules) == {"emotion_lib.inference"}

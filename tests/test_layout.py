"""The layout is the architecture: layers import only downward, every import is declared.

Layers, lowest first: ``_core`` < ``_theory`` < ``_training`` < ``_sweeps`` <
``_plotting`` < ``_reproduce`` < ``_cli``. A module may import its own layer
and the layers below; ``jepa_flow/__init__.py`` re-exports from any of them.
Third-party imports must be dependencies in pyproject.toml (standard library
aside).
"""

import ast
import re
import sys
import tomllib
from pathlib import Path

import jepa_flow

ROOT = Path(jepa_flow.__file__).parent
LAYERS = ["_core", "_theory", "_training", "_sweeps", "_plotting", "_reproduce", "_cli"]
# distribution name -> import name, where they differ
IMPORT_NAME = {"jaxlib": "jaxlib", "scikit-learn": "sklearn"}


def _modules():
    return sorted(p for p in ROOT.rglob("*.py") if p.parent != ROOT)


def _imports(path: Path):
    """(absolute module names, is_top_level) of every import in ``path``."""
    package = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
                if node.module is None:  # from . import _x
                    for alias in node.names:
                        yield f"{mod}.{alias.name}"
                else:
                    yield mod
            else:
                yield node.module


def test_layers_import_only_downward():
    bad = []
    for path in _modules():
        layer = path.relative_to(ROOT).parts[0]
        rank = LAYERS.index(layer)
        for mod in _imports(path):
            parts = mod.split(".")
            if parts[0] != "jepa_flow":
                continue
            if len(parts) == 1:  # "from .. import __version__"
                continue
            target = parts[1]
            if target in LAYERS and LAYERS.index(target) > rank:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "upward imports:\n" + "\n".join(bad)


def test_every_third_party_import_is_declared():
    meta = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())
    declared = set()
    # an optional extra's import is declared too (imported inside the function that needs it)
    for dep in [
        *meta["project"]["dependencies"],
        *meta["project"]["optional-dependencies"]["xarray"],
    ]:
        name = dep.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        declared.add(IMPORT_NAME.get(name, name.replace("-", "_")))
    used = set()
    for path in [*_modules(), ROOT / "__init__.py"]:
        for mod in _imports(path):
            top = mod.split(".")[0]
            if top != "jepa_flow" and top not in sys.stdlib_module_names:
                used.add(top)
    assert used <= declared, f"imported but not declared in pyproject.toml: {used - declared}"


def test_no_matplotlib_backend_switch_outside_the_cli():
    for path in _modules():
        if path.relative_to(ROOT).parts[0] != "_cli":
            assert "matplotlib.use(" not in path.read_text(), path


def test_every_public_name_has_a_docstring_example():
    missing = [
        name
        for name in jepa_flow.__all__
        if name != "__version__" and ">>>" not in (getattr(jepa_flow, name).__doc__ or "")
    ]
    assert not missing, f"public names without a docstring example: {missing}"


def test_the_api_reference_lists_every_public_name():
    api = (ROOT.parent / "docs" / "api.md").read_text()
    listed = set(re.findall(r"^::: jepa_flow\.(\w+)$", api, flags=re.M))
    assert listed == set(jepa_flow.__all__) - {"__version__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (at module level or inside functions).

    ``from P import x`` is an edge to ``P.x`` when that is a module and to ``P``
    otherwise; the parent packages a submodule import runs first are not edges
    (Python imports them before any module of theirs, whatever the order).
    """
    paths = sorted(ROOT.rglob("*.py"))
    modules = {_module_name(p): p for p in paths}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith("jepa_flow"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                if not base.startswith("jepa_flow"):
                    continue
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    edges.add(sub if sub in modules else base)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as a list of modules (empty when it is acyclic)."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_import_graph_is_acyclic():
    graph = _import_graph()
    assert "jepa_flow._sweeps._run" in graph and graph["jepa_flow"]  # the graph is built
    cycle = _cycle(graph)
    assert not cycle, "circular import: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


# Size limits (issue 17.7): small functions and modules read, test and review better.
MAX_FUNCTION_LINES = 80  # non-blank lines, the docstring excluded, nested functions included
MAX_MODULE_LINES = 600


def code_lines(node: ast.AST, lines: list[str]) -> int:
    """Non-blank lines of a function (decorators included), its docstring excluded."""
    skip = set()
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
        if isinstance(first.value.value, str):
            skip = set(range(first.lineno, first.end_lineno + 1))
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return sum(
        1 for i in range(start, node.end_lineno + 1) if i not in skip and lines[i - 1].strip()
    )


def _function_sizes(path: Path):
    text = path.read_text()
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{path.relative_to(ROOT.parent)} {node.name}", code_lines(node, lines)


def test_code_lines_counts_code_not_docstrings():
    src = 'def f(x):\n    """Doc.\n\n    More.\n    """\n\n    y = x\n    # why\n    return y\n'
    node = ast.parse(src).body[0]
    assert code_lines(node, src.splitlines()) == 4  # def, y = x, the comment, return


def _long_functions() -> dict[str, int]:
    return {
        name: n
        for path in [*_modules(), ROOT / "__init__.py"]
        for name, n in _function_sizes(path)
        if n > MAX_FUNCTION_LINES
    }


def _long_modules() -> dict[str, int]:
    return {
        str(path.relative_to(ROOT.parent)): n
        for path in [*_modules(), ROOT / "__init__.py"]
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }


def test_no_function_is_longer_than_80_lines():
    long = [f"{k}: {n} lines" for k, n in _long_functions().items()]
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines of code:\n" + "\n".join(long)


def test_no_module_is_longer_than_600_lines():
    long = [f"{k}: {n} lines" for k, n in _long_modules().items()]
    assert not long, f"modules over {MAX_MODULE_LINES} lines:\n" + "\n".join(long)


# Experiments are applications of the library: they import its public names
# (``from .. import critical_time``) and the reproduction's own helpers (``._common``),
# never a private module of the library. Experiment 10 is being written (issue 15).
EXEMPT_EXPERIMENTS = {"exp10_validity.py"}
# The private modules an experiment still needs, each with the reason it is not public.
STILL_PRIVATE: dict[tuple[str, str], str] = {}


def test_experiments_use_the_public_api():
    bad = []
    for path in sorted((ROOT / "_reproduce").glob("exp*.py")):
        if path.name in EXEMPT_EXPERIMENTS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
                if (path.name, node.module) not in STILL_PRIVATE:
                    bad.append(f"{path.name}: from ..{node.module} import ...")
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                if (node.module or "").startswith("jepa_flow."):
                    bad.append(f"{path.name}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                bad += [f"{path.name}: import {a.name}" for a in node.names if "._" in a.name]
    assert not bad, "experiments importing private modules:\n" + "\n".join(bad)


def test_every_public_function_is_annotated():
    """Every parameter and the return of every exported function (issue 17.2)."""
    import inspect

    bare = []
    for name in jepa_flow.__all__:
        obj = getattr(jepa_flow, name)
        if not inspect.isfunction(obj):
            continue
        sig = inspect.signature(obj)
        bare += [f"{name}({p.name})" for p in sig.parameters.values() if p.annotation is p.empty]
        if sig.return_annotation is sig.empty:
            bare.append(f"{name} -> ?")
    assert not bare, f"unannotated: {bare}"

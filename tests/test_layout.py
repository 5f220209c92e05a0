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

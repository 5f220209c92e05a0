"""What README.md and docs/ quote (defaults, paths, times, counts, measured numbers) is what
the code and results/ say.

Each check renders the phrase a page must contain from the code or from the
JSON in results/, so that changing either fails here, at the page to update.
Generated tables (scripts/doc_tables.py) must equal what the script makes of
results/. Pure Python apart from importing jepa_flow (no computation).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import doc_tables  # noqa: E402  (scripts/)


def page(name: str) -> str:
    """A page's text with line breaks folded to spaces (phrases wrap anywhere)."""
    return " ".join((ROOT / name).read_text().split())


def results(name: str) -> dict:
    return json.loads((ROOT / "results" / name).read_text())


def assert_says(name: str, phrase: str) -> None:
    assert " ".join(phrase.split()) in page(name), f"{name} should say: {phrase!r}"


def test_generated_tables_match_results():
    stale = [name for name, (old, new) in doc_tables.render().items() if old != new]
    assert not stale, f"stale generated tables in {stale}: run python scripts/doc_tables.py"


def test_benchmark_verdicts():
    from bench_all import verdict

    assert verdict(6.5, ">= 10x") == "**no**" and verdict(12.0, ">= 10x") == "yes"
    assert verdict(780, "< 2048") == "yes" and verdict(0.49, "< 2") == "yes"
    assert verdict(5.0, "") == ""


def test_readme_is_an_entry_page():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines (at most 150)"
    text = page("README.md")
    for target in ("make demo", "make test", "docs/benchmarks.md", "docs/errors.md"):
        assert target in text
    assert "docs/formulas.md" in text and "bench-table" not in text


def test_demo_paths_match_the_makefile_and_the_cli():
    from jepa_flow._cli import build_parser

    make = (ROOT / "Makefile").read_text()
    command = re.search(r"\$\(BIN\)/jepa-flow (demo [^\n]*)", make).group(1)
    out = re.search(r"--out (\S+)", command).group(1)
    assert_says("docs/guide/simulate.md", f"jepa-flow {command} # what `make demo` runs")
    for name in ("README.md", "docs/index.md"):
        assert_says(name, f"runs the demo into {out}/")
        assert "results/demo/`, " not in page(name)  # make demo does not write results/
    demo = build_parser()._subparsers._group_actions[0].choices["demo"]
    assert demo.get_default("out") == out
    assert_says("docs/guide/simulate.md", f"`t [{demo.get_default('n_t')}]`")


def test_demo_flip_depths_quoted():
    objectives = results("demo/summary.json")["objectives"]
    jepa, mae = objectives["jepa"]["flip_depth"], objectives["mae"]["flip_depth"]
    assert jepa is not None and mae is None  # as README.md and the simulation guide say
    assert_says("README.md", f"JEPA's order flips at depth {jepa}, MAE's never")
    assert_says("docs/guide/simulate.md", f"flip depths: JEPA {jepa}, MAE none")


def test_reproduce_default_out_and_time():
    from jepa_flow._cli._reproduce import DEFAULT_OUT

    assert_says(
        "docs/guide/reproduce.md", f"| `--out OUT` | output directory (default `{DEFAULT_OUT}`"
    )
    assert_says("docs/guide/reproduce.md", f"every experiment, into {DEFAULT_OUT}/")
    assert_says("README.md", f"every experiment into {DEFAULT_OUT}/")
    seconds = results("claims.json")["seconds_all_experiments"]
    minutes = round(seconds / 60)
    assert_says("docs/guide/reproduce.md", f"took {seconds:.0f} s in total")
    assert_says("docs/guide/reproduce.md", f"(about {minutes} minutes;")
    assert_says("README.md", f"(about {minutes} minutes)")


def test_number_of_experiments():
    words = {8: "eight", 9: "nine", 10: "ten"}
    n = len(results("claims.json")["experiments"])
    for name in ("README.md", "docs/index.md", "docs/guide/reproduce.md"):
        text = page(name)
        assert f"{words[n]} experiments" in text, name
        assert not any(f"{w} experiments" in text for k, w in words.items() if k != n), name


def test_precision_statements():
    for name in ("README.md", "docs/index.md"):
        assert "always runs in float64" not in page(name)
        assert "float32" in page(name)  # says how the precision is chosen
    assert_says("docs/guide/simulate.md", "no warning is given")


def test_budget_defaults():
    from jepa_flow._core._budget import DEFAULT_MAX_DISK, DEFAULT_MAX_MEMORY

    mem, disk = DEFAULT_MAX_MEMORY / 2**30, DEFAULT_MAX_DISK / 2**30
    assert_says("docs/errors.md", f"{mem:g} GiB of memory and {disk:g} GiB of disk by default")


def test_sampler_defaults():
    import jepa_flow as jf
    from jepa_flow._cli import build_parser
    from jepa_flow._sweeps import _train

    for fn in (jf.gaussian, jf.noisy_views, jf.linear_dynamics):
        assert inspect.signature(fn).parameters["sampler"].default == "auto"
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    assert train.get_default("sampler") == "auto"
    assert_says("docs/guide/training.md", 'The default, `sampler="auto"`')
    default = _train.DEFAULTS["sampler"] if hasattr(_train, "DEFAULTS") else None
    sweep_default = default or re.search(r'"sampler": "(\w+)"', inspect.getsource(_train)).group(1)
    assert_says("docs/guide/training.md", f'`sampler = "{sweep_default}"` (its default)')
    assert_says("docs/guide/sweep.md", f'`sampler = "{sweep_default}"`')


def test_sweep_chunk_defaults():
    import jepa_flow as jf

    def chunk(toml: str) -> int:  # what run_sweep uses when no chunk_size is given
        return jf.parse_sweep_config(toml).default_chunk()

    base = '[sweep]\nobjective = "jepa"\ndepth = 1\nlam = 1.0\nvar = 1.0\neps = 1e-3\n'
    exact, ode = chunk(base), chunk(base + 'method = "ode"\n')
    general = chunk(base + 'flow = "general"\n')
    train = chunk((ROOT / "configs" / "sweep_train.toml").read_text())
    validity = chunk((ROOT / "configs" / "sweep_validity.toml").read_text())
    assert train == ode
    assert_says(
        "docs/guide/sweep.md",
        f'(default {exact:,} configurations, {ode:,} for `method = "ode"` and for `[train]` '
        f'sweeps, {general:,} for `flow = "general"`, {validity:,} for `[validity]`)',
    )


def test_general_sweep_example_count():
    from _doc_blocks import blocks

    import jepa_flow as jf

    (block,) = [b for b in blocks(ROOT / "docs/guide/sweep.md") if 'flow = "general"' in b.code]
    config = jf.parse_sweep_config(block.code)
    assert_says("docs/guide/sweep.md", f"The example above holds {config.size:,} configurations")
    described = config.describe()
    for group, count in re.findall(r"(\w+/\w+|\bmae\b)\s+(\d+)", described):
        assert_says("docs/guide/sweep.md", f"{group} {count}")


def test_training_sweep_example_size():
    import jepa_flow as jf

    config = jf.parse_sweep_config((ROOT / "configs" / "sweep_train.toml").read_text())
    shape = dict(zip(config.names, config.shape)) if hasattr(config, "names") else {}
    chunks = shape.get("objective", 1) * shape.get("batch", 1) * shape.get("eta", 1)
    assert_says("docs/guide/sweep.md", f"({config.size} runs in {chunks} chunks)")


def test_training_accuracy_statements():
    acc = results("accuracy_train.json")
    depths = [v for k, v in acc.items() if k.startswith("depth_")]
    jepa_pop = max(d["jepa"]["eigenbasis"]["max_rel_error"] for d in depths)
    assert jepa_pop < 0.005
    assert_says("docs/guide/training.md", "give the errors in the table below (all under 0.5 %)")
    population = [
        d[o][b]["order_agrees"] for d in depths for o in d for b in ("eigenbasis", "rotated")
    ]
    mae = [d["mae"][k]["order_agrees"] for d in depths for k in ("noisy_views", "linear_dynamics")]
    assert all(population) and all(mae)
    assert_says(
        "docs/guide/training.md",
        "Learning order identical to the theory in every population run and every MAE run.",
    )


def test_comparison_fields_listed():
    import jepa_flow as jf

    text = page("docs/guide/training.md")
    listed = re.search(r"its fields are (.*?), with the run itself as `result`", text).group(1)
    names = re.findall(r"`(\w+)`", listed)
    fields = {f.name for f in dataclasses.fields(jf.Comparison)} - {"result", "lam", "var", "rho"}
    assert set(names) == fields, f"listed but not fields: {set(names) - fields}; unlisted: " + str(
        fields - set(names)
    )


def test_float32_sweep_accuracy_quoted():
    acc = results("accuracy_float32.json")
    balanced = max(
        v["t_star"]["max"]
        for k, v in acc.items()
        if k.startswith("sweep/balanced/") and "t_star" in v
    )
    ema = acc["sweep/general/jepa/ema"]["t_star"]["max"]
    short = lambda x: f"{x:.1e}".replace("e-0", "e-")  # noqa: E731
    assert_says(
        "docs/guide/sweep.md", f"at most {short(balanced)} relative for the balanced methods"
    )
    assert_says("docs/guide/sweep.md", f"{short(ema)} for the EMA flow")


def test_version_is_written_once():
    import jepa_flow

    assert re.search(r'^version = "', (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    source = (ROOT / "jepa_flow" / "__init__.py").read_text()
    assert "metadata.version(" in source
    assert not re.search(r'__version__ = "\d+\.\d+', source)
    version = jepa_flow.__version__
    for name in ["README.md", *(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/*.md"))]:
        if version != "0+unknown":
            assert f"`{version}`" not in page(name), f"{name} writes the version"


@pytest.mark.parametrize("name", ["README.md", "docs/formulas.md", "docs/index.md"])
def test_paths_named_exist(name):
    text = (ROOT / name).read_text()
    paths = set(re.findall(r"`(jepa_flow/[\w/]+\.py)`", text))
    if name == "docs/formulas.md":  # the table's paths are under jepa_flow/
        paths |= {f"jepa_flow/{p}" for p in re.findall(r"`(_[\w/]+\.py)`", text)}
        assert len(paths) >= 15
    missing = sorted(p for p in paths if not (ROOT / p).is_file())
    assert not missing, f"{name} names files that do not exist: {missing}"


def _slug(heading: str) -> str:
    """The anchor mkdocs' toc extension gives a heading."""
    text = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[\s-]+", "-", text)


def _site_page(url: str, base: Path) -> Path | None:
    """The source of a site-relative link (``../../guide/sweep/``) from a notebook's page."""
    parts = Path(os.path.normpath(base / url)).relative_to(ROOT / "docs").parts
    stem = ROOT / "docs" / Path(*parts) if parts else ROOT / "docs"
    for candidate in (stem.with_suffix(".md"), stem.with_suffix(".ipynb"), stem / "index.md"):
        if candidate.is_file():
            return candidate
    if stem.name == "results":
        return ROOT / "results" / "README.md"
    return None


@pytest.mark.parametrize("notebook", sorted((ROOT / "docs" / "examples").glob("*.ipynb")))
def test_notebook_links_resolve_in_the_site(notebook):
    """Notebook pages live at examples/NAME/ in the site, and mkdocs does not rewrite their
    links: they are written as site URLs, and each must name a page (and a heading) that exists."""
    cells = json.loads(notebook.read_text())["cells"]
    text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links
    base = ROOT / "docs" / "examples" / notebook.stem  # the page's URL, as a directory
    for link in links:
        if link.startswith("http"):
            continue
        url, _, anchor = link.partition("#")
        assert not url.endswith((".md", ".ipynb")), f"{notebook.name}: {link} is not a site URL"
        target = _site_page(url, base)
        assert target is not None, f"{notebook.name}: {link} names no page"
        if anchor:
            headings = re.findall(r"^#+ (.*)$", target.read_text(), re.MULTILINE)
            assert anchor in {_slug(h) for h in headings}, f"{notebook.name}: no #{anchor}"

"""Every example of README.md and docs/ runs (tests/_doc_blocks.py says how each block is run).

One subprocess runs every page's Python blocks and ``jepa-flow`` commands,
page after page (sharing JAX's compilations), each page in order, in a
scratch directory of its own with links to ``configs/`` and ``scripts/`` and
a fresh Python namespace. Blocks marked ``<!-- doctest: tiny -->`` run at
small sizes and ``<!-- doctest: slow -->`` ones only in the second tier
(``pytest -m slow``, ``make test-slow``). ``make`` commands are not run:
they create a virtual environment (CI runs them itself).

The number of blocks executed is reported at the end of the session
(tests/conftest.py's terminal summary).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _doc_blocks import ROOT, blocks, doc_pages, plan

PAGES = [p.relative_to(ROOT).as_posix() for p in doc_pages()]
SLOW_PAGES = [name for name in PAGES if any(b.has("slow") for b in blocks(ROOT / name))]


def _run_pages(tier: str, names: list[str], tmp: Path) -> tuple[dict, str]:
    """Run the pages' steps of ``tier`` in one subprocess: ({page: report}, log)."""
    pages = []
    for name in names:
        steps = plan(ROOT / name, tier).steps
        if not steps:
            continue
        where = tmp / name.replace("/", "_")
        where.mkdir()
        for link in ("configs", "scripts"):
            (where / link).symlink_to(ROOT / link)
        pages.append({"page": name, "dir": str(where), "steps": [s.to_json() for s in steps]})
    todo, report = tmp / "pages.json", tmp / "report.json"
    todo.write_text(json.dumps(pages))
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, MPLBACKEND="Agg")
    env.pop("JEPA_FLOW_DEBUG", None)
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_doc_runner.py"), str(todo), str(report)],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=3000,
    )
    log = proc.stdout + proc.stderr
    done = json.loads(report.read_text()) if report.exists() else {}
    return done, log


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    return _run_pages("fast", PAGES, tmp_path_factory.mktemp("docs_fast"))


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory):
    return _run_pages("slow", SLOW_PAGES, tmp_path_factory.mktemp("docs_slow"))


def _check(name: str, tier: str, run, record_property) -> None:
    p = plan(ROOT / name, tier)
    assert not p.errors, "\n".join(p.errors)
    for block in p.toml:  # configuration examples: parsed and validated, not run
        import jepa_flow as jf

        try:
            jf.parse_sweep_config(block.code)
        except ValueError as err:
            pytest.fail(f"{block.where}: the TOML example is refused: {err}")
    record_property("doc_toml_parsed", len(p.toml))
    record_property("doc_not_run", p.not_run)
    executed = 0
    if p.steps:
        reports, log = run
        done = reports.get(name)
        assert done is not None, f"{name}: the runner did not reach this page:\n{log[-6000:]}"
        failed = [r for r in done if r["error"]]
        if failed:
            start = log.find(f"=== {failed[0]['where']}")
            pytest.fail(
                f"{failed[0]['where']}: {failed[0]['what']}\n{failed[0]['error']}\n"
                f"{log[max(start, 0) :][:6000]}"
            )
        assert len(done) == len(p.steps)
        executed = p.blocks_run
    record_property("doc_blocks_executed", executed)


@pytest.mark.parametrize("name", PAGES)
def test_page_examples_run(name, fast_run, record_property):
    _check(name, "fast", fast_run, record_property)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_PAGES)
def test_page_examples_run_in_the_second_tier(name, slow_run, record_property):
    _check(name, "slow", slow_run, record_property)

"""Run documentation pages' steps in this process (tests/test_doc_examples.py starts it).

    python tests/_doc_runner.py PAGES.json REPORT.json

PAGES.json lists pages, each with its scratch directory (holding links to the
repository's ``configs/`` and ``scripts/``) and its steps
(tests/_doc_blocks.py). A page's steps run in order in its directory and
share one Python namespace, as a reader pasting the page's blocks into one
session would; every page starts with a fresh namespace. ``jepa-flow``
commands go through ``jepa_flow._cli.main`` in this process, so pages share
JAX's compilations; scripts run in a subprocess. The first failing step
stops its page; REPORT.json maps each page to what ran.
"""

from __future__ import annotations

import doctest
import json
import os
import subprocess
import sys
import time
import traceback


def _python(step: dict, namespace: dict) -> str | None:
    code = compile(step["code"], step["where"], "exec")
    exec(code, namespace)
    return None


def _doctest(step: dict, namespace: dict) -> str | None:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(step["code"], namespace, step["where"], step["where"], 0)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    out = []
    runner = doctest.DocTestRunner(optionflags=flags, verbose=False)
    runner.run(test, out=out.append, clear_globs=False)
    namespace.update(test.globs)
    return "".join(out) or None


def _cli(step: dict, namespace: dict) -> str | None:
    from jepa_flow._cli import main

    code = main(step["argv"])
    if code != step["exit"]:
        return f"jepa-flow {' '.join(step['argv'])}: exit code {code}, expected {step['exit']}"
    return None


def _script(step: dict, namespace: dict) -> str | None:
    proc = subprocess.run([sys.executable, *step["argv"]], capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stdout.write(proc.stderr)
    if proc.returncode != step["exit"]:
        return (
            f"python {' '.join(step['argv'])}: exit code {proc.returncode}, "
            f"expected {step['exit']}: {proc.stderr[-2000:]}"
        )
    return None


def _runpy(step: dict, namespace: dict) -> str | None:
    import runpy

    argv = sys.argv
    sys.argv = list(step["argv"])
    try:
        runpy.run_path(step["argv"][0], run_name="__main__")
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        sys.argv = argv
    if code != step["exit"]:
        return f"python {' '.join(step['argv'])}: exit code {code}, expected {step['exit']}"
    return None


KINDS = {"python": _python, "doctest": _doctest, "cli": _cli, "runpy": _runpy, "script": _script}


def run_page(steps: list[dict]) -> list[dict]:
    if "jax" in sys.modules:  # a fresh session: JAX's default dtype (float32) until a page sets it
        sys.modules["jax"].config.update("jax_enable_x64", False)
    namespace: dict = {"__name__": "__main__"}
    report = []
    for step in steps:
        what = " ".join(step["argv"]) if step["argv"] else step["kind"]
        print(f"=== {step['where']}: {what}", flush=True)
        start = time.perf_counter()
        try:
            error = KINDS[step["kind"]](step, namespace)
        except BaseException:  # noqa: BLE001  (the report carries it)
            error = traceback.format_exc(limit=-8)
        sys.stdout.flush()
        sys.stderr.flush()
        seconds = time.perf_counter() - start
        report.append({"where": step["where"], "what": what, "seconds": seconds, "error": error})
        if error:
            break
    return report


def main() -> int:
    pages_path, report_path = sys.argv[1], sys.argv[2]
    report = {}
    for page in json.loads(open(pages_path).read()):
        os.chdir(page["dir"])
        report[page["page"]] = run_page(page["steps"])
        with open(report_path, "w") as f:  # after every page: a crash keeps the pages done
            json.dump(report, f)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.exit(main())

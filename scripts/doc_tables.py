"""The documentation's generated tables, from the JSON in results/.

    python scripts/doc_tables.py           # rewrite every generated table in place
    python scripts/doc_tables.py --check   # exit 1 (and name the pages) if any is stale

A generated table sits between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``
markers in a page:

- ``demo-table`` (README.md, docs/guide/simulate.md): the demo's critical
  times and first-learned feature per depth, from ``results/demo/summary.json``;
- ``bench-table`` (docs/benchmarks.md): every benchmark figure with its target
  and whether the median meets it, from the reports of
  ``scripts/bench_all.py`` (``DOC_REPORTS`` there);
- ``bench-precision`` (docs/benchmarks.md): float32 against float64 in one run;
- ``bench-gpu`` (docs/benchmarks.md): the GPU report.

tests/test_doc_facts.py runs ``render`` and fails where a page differs, so a
number in these tables cannot drift from results/. Pure Python, no JAX.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_all  # noqa: E402  (a sibling script)

GPU_REPORT = "results/bench/nvidia-h100-x1.json"
PAGES = {
    "README.md": ("demo-table",),
    "docs/guide/simulate.md": ("demo-table",),
    "docs/benchmarks.md": ("bench-table", "bench-precision", "bench-gpu"),
}


def demo_table(summary: dict) -> str:
    """Critical times of the demo per depth, and which feature each objective learns first."""
    names = [f["name"] for f in summary["features"]]
    head = ["depth"]
    for obj in ("jepa", "mae"):
        head += [f"{obj.upper()} `t*_{n}`" for n in names] + [f"{obj.upper()} first"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for i, depth in enumerate(summary["depth"]):
        row = [str(depth)]
        for obj in ("jepa", "mae"):
            o = summary["objectives"][obj]
            row += [f"{o['t_star'][n][i]:g}" for n in names]
            row.append(o["learning_order"][str(depth)][0])
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _load(root: Path, path: str) -> dict:
    return json.loads((root / path).read_text())


def tables(root: Path = ROOT, bench_reports=None) -> dict[str, str]:
    """Every generated table by marker name."""
    reports = [_load(root, p) for p in (bench_reports or bench_all.DOC_REPORTS)]
    committed = [_load(root, p) for p in bench_all.DOC_REPORTS]
    # float32 against float64 from a report that holds both (the given ones first)
    both = next(r for r in reports + committed if len(bench_all.by_precision(r)) > 1)
    return {
        "demo-table": demo_table(_load(root, "results/demo/summary.json")),
        "bench-table": bench_all.table(*reports),
        "bench-precision": bench_all.precision_table(both),
        "bench-gpu": bench_all.gpu_table(_load(root, GPU_REPORT)),
    }


def fill(text: str, name: str, table: str, page: str = "") -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{page}: no {start} ... {end} markers")
    return text[: i + len(start)] + "\n" + table + "\n" + text[j:]


def render(root: Path = ROOT, bench_reports=None) -> dict[str, tuple[str, str]]:
    """{page: (current text, text with every generated table up to date)}."""
    made = tables(root, bench_reports)
    out = {}
    for page, names in PAGES.items():
        old = (root / page).read_text()
        new = old
        for name in names:
            new = fill(new, name, made[name], page)
        out[page] = (old, new)
    return out


def write_docs(root: Path = ROOT, bench_reports=None) -> list[str]:
    """Rewrite the pages whose tables are stale; returns their paths."""
    changed = []
    for page, (old, new) in render(root, bench_reports).items():
        if new != old:
            (root / page).write_text(new)
            changed.append(page)
    return changed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report stale pages (exit 1)")
    args = ap.parse_args()
    if args.check:
        stale = [page for page, (old, new) in render().items() if old != new]
        for page in stale:
            print(f"{page}: generated tables are stale (python scripts/doc_tables.py)")
        return 1 if stale else 0
    for page in write_docs():
        print(f"rewrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
- ``bench-gpu`` (docs/benchmarks.md): the GPU report;
- ``train-accuracy``, ``train-capture`` (docs/guide/training.md): the training
  engine against the theory, from ``results/accuracy_train.json``.

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
    "docs/guide/training.md": ("train-accuracy", "train-capture"),
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


def _e(x) -> str:
    """1.2e-4 style (no zero padding of the exponent)."""
    return f"{x:.1e}".replace("e-0", "e-").replace("e+0", "e")


def train_accuracy(acc: dict) -> str:
    """The training engine against the theory (results/accuracy_train.json), per depth."""
    depths = sorted(int(k.split("_")[1]) for k in acc if k.startswith("depth_"))

    def values(xs) -> str:
        return ", ".join(f"{x:g}" for x in xs)

    def per_depth(table) -> str:
        return values(table[str(L)] for L in depths)

    eta, eta_mb = acc["eta"], acc["eta_minibatch"]
    lines = [
        f"Spectrum `lam = ({values(acc['lam'])})`, `rho = ({values(acc['rho'])})`, "
        f"`eps = {acc['eps']:g}`; JEPA `eta = {per_depth(eta['jepa'])}` and MAE "
        f"`eta = {per_depth(eta['mae'])}` at depths {depths[0]}-{depths[-1]} (minibatch "
        f"JEPA `eta = {per_depth(eta_mb['jepa'])}`). "
        "Max relative error of the training critical times (`|Wbar e_j|` reaching half of "
        "`wbar*_j`):",
        "",
        "| depth | JEPA pop., eigenbasis | MAE pop., eigenbasis | rotated U vs eigenbasis "
        "(JEPA / MAE) | JEPA batch 1024, no capture predicted (static / dynamics) | MAE batch "
        "1024 (static / dynamics) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    key = "max_rel_error_theory_where_no_capture"
    for L in depths:
        j, m = acc[f"depth_{L}"]["jepa"], acc[f"depth_{L}"]["mae"]
        rot = "max_rel_diff_vs_eigenbasis_no_capture"
        lines.append(
            f"| {L} | {_e(j['eigenbasis']['max_rel_error'])} | "
            f"{_e(m['eigenbasis']['max_rel_error'])} | {_e(j['rotated'][rot])} / "
            f"{_e(m['rotated'][rot])} | {_e(j['noisy_views'][key])} / "
            f"{_e(j['linear_dynamics'][key])} | {_e(m['noisy_views'][key])} / "
            f"{_e(m['linear_dynamics'][key])} |"
        )
    return "\n".join(lines)


def train_capture(acc: dict) -> str:
    """The capture runs of results/accuracy_train.json, in words."""
    parts = []
    for k in sorted(k for k in acc if k.startswith("capture_")):
        c, depth = acc[k], k.rsplit("_", 1)[1]
        seen, full = len(c["capture"]), len(c["capture_full"])
        same = f"the same {full}" if seen == full else f"{full}"
        parts.append(
            f"at depth {depth}, {seen} captures seen ({same} in the full-matrix flow), critical "
            f"times up to {100 * c['max_rel_error_theory_where_capture']:.0f} % before the "
            f"per-feature theory, training within {_e(c['max_rel_error_full_flow'])} of the "
            "full-matrix flow from the same state"
        )
    return (
        "Capture made visible (`eps = 1e-3`, random U, balanced start plus 1e-8 noise, "
        "`eta = 0.05`): " + "; ".join(parts) + "."
    )


def _load(root: Path, path: str) -> dict:
    return json.loads((root / path).read_text())


def tables(root: Path = ROOT, bench_reports=None) -> dict[str, str]:
    """Every generated table by marker name."""
    reports = [_load(root, p) for p in (bench_reports or bench_all.DOC_REPORTS)]
    committed = [_load(root, p) for p in bench_all.DOC_REPORTS]
    # float32 against float64 from a report that holds both (the given ones first)
    both = next(r for r in reports + committed if len(bench_all.by_precision(r)) > 1)
    acc = _load(root, "results/accuracy_train.json")
    return {
        "train-accuracy": train_accuracy(acc),
        "train-capture": train_capture(acc),
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

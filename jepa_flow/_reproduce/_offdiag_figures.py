"""Experiment 10's figures and tables (every number from the rows of ``_offdiag_measure``)."""

from __future__ import annotations

import numpy as np

from .._core._io import write_bytes_atomic
from .._plotting._validity import plot_validity_map as validity_map
from ._common import save, subplots
from ._offdiag_claims import _median, offdiag_slopes, values
from ._offdiag_measure import unsettled

MAP_THEORIES = ("pca", "gen-dual", "gen-unit", "gen-sxx", "lam", "mae", "cited")
TABLE_THEORIES = ("pca", "gen-dual", "gen-unit", "gen-sxx", "lam", "mae", "cited")
LABEL = {"jepa": "JEPA (stop-gradient)", "ema": "JEPA (EMA, tau = 1)", "mae": "MAE"}
COLORS = {
    "pca": "C0",
    "gen-dual": "C3",
    "gen-unit": "C1",
    "gen-sxx": "C5",
    "lam": "C2",
    "mae": "C4",
    "cited": "0.4",
    "rho-order": "k",
}


def _grid(rows, theory, score, label, p):
    """Median over spectra, seeds and eps: ``[depth, theta]``."""
    g = np.full((len(p["depths"]), len(p["theta_deg"])), np.nan)
    for i, L in enumerate(p["depths"]):
        for j, th in enumerate(p["theta_deg"]):
            g[i, j] = _median(values(rows, theory, score, objective=label, depth=L, theta=th))
    return g


def plot_validity_map(out, rows, label, p) -> str:
    """Spearman (top) and median relative time error (bottom) over theta x depth, per theory
    (the library's validity map, ``_plotting._validity``)."""
    theories = [t for t in MAP_THEORIES if t != "cited" or label != "mae"]
    fig = validity_map(
        {th: _grid(rows, th, "spearman", label, p) for th in theories},
        {th: _grid(rows, th, "median_error", label, p) for th in theories},
        p["theta_deg"],
        p["depths"],
        title=f"{LABEL[label]}: each theory against the full-matrix flow "
        "(median over spectra, seeds and eps)",
    )
    name = f"validity_{label}.png"
    save(fig, out / name)
    return name


def plot_cited_offdiag(out, rows, p) -> str:
    """The cited claim: off-diagonal size in generalized coordinates against eps (theta = 10)."""
    s = offdiag_slopes(rows, p)
    spectra = list(p["spectra"])
    fig, axes = subplots(1, len(spectra), w=3.6, h=3.0)
    for ax, sp in zip(axes[0], spectra):
        for j, (key, v) in enumerate(x for x in s.items() if x[0].startswith(sp + ".")):
            e = np.array(sorted(v["offdiag_median_by_eps"]), float)
            o = np.array(
                [v["offdiag_median_by_eps"][k] for k in sorted(v["offdiag_median_by_eps"])]
            )
            if not np.isfinite(o).any():
                continue
            ax.plot(
                e,
                o,
                "o-",
                color=f"C{j}",
                ms=3,
                label=f"L={v['depth']}: slope {v['slope']:.2f} (>= {0.5 / v['depth']:.2f}?)",
            )
        if ax.lines:
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=6)
        else:
            ax.text(0.5, 0.5, "no theta = 10 at this level", ha="center", transform=ax.transAxes)
        ax.set_xlabel("eps", fontsize=8)
        ax.set_ylabel("max_t |offdiag G|_F / |diag G|_F", fontsize=8)
        ax.set_title(f"{sp} spectrum, JEPA stop-gradient, theta = 10", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    save(fig, out / "cited_offdiag.png")
    return "cited_offdiag.png"


def plot_real(out, rows, p) -> str:
    """Median Spearman (over n_features, power, eps) against depth, per data set and objective."""
    sets, objectives = p["real"]["sets"], p["real"]["objectives"]
    fig, axes = subplots(len(objectives), len(sets), w=3.0, h=2.6)
    for r, label in enumerate(objectives):
        for c, name in enumerate(sets):
            ax = axes[r, c]
            for th in TABLE_THEORIES:
                m = [
                    _median(values(rows, th, "spearman", set=name, objective=label, depth=L))
                    for L in p["real"]["depths"]
                ]
                ax.plot(
                    p["real"]["depths"],
                    m,
                    marker="o",
                    ms=3,
                    color=COLORS[th],
                    label=th,
                    ls="--" if th == "cited" else "-",
                )
            ax.set_ylim(-1.05, 1.05)
            ax.axhline(0, color="0.8", lw=0.7)
            ax.set_title(f"{name}, {LABEL[label]}", fontsize=8)
            ax.set_xlabel("depth L", fontsize=8)
            ax.set_xticks(p["real"]["depths"])
            ax.tick_params(labelsize=7)
        axes[r, 0].set_ylabel("median Spearman vs full flow", fontsize=8)
    axes[0, 0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save(fig, out / "real_data.png")
    return "real_data.png"


def plot_trained(out, real, trained, mlp, p) -> str:
    """Spearman of each theory against the flow, the trained linear runs and the MLPs."""
    labels = sorted({r["objective"] for r in trained} | {r["objective"] for r in mlp})
    fig, axes = subplots(1, len(labels), w=5.0, h=3.2)
    tp = p["trained"]
    for ax, label in zip(axes[0], labels):
        groups = []
        for r in (r for r in trained if r["objective"] == label):
            flow = [
                x
                for x in real
                if x["set"] == r["set"]
                and x["objective"] == label
                and x["depth"] == tp["depth"]
                and x["eps"] == tp["eps"]
                and x["n_features"] == tp["n_features"]
                and x["power"] == tp["power"]
            ]
            groups.append((f"{r['set']}\nflow", flow[0]["scores"] if flow else None))
            groups.append((f"{r['set']}\nlinear GD", r["scores"]))
        for r in (r for r in mlp if r["objective"] == label):
            groups.append(
                (
                    f"{r['set']}\nMLP (mean)",
                    {k: {"spearman": v} for k, v in r["spearman_mean"].items()},
                )
            )
        w = 0.8 / len(TABLE_THEORIES)
        for i, th in enumerate(TABLE_THEORIES):
            v = [np.nan if g is None else g[th]["spearman"] for _, g in groups]
            v = [np.nan if x is None else x for x in v]
            ax.bar(np.arange(len(groups)) + (i - 3) * w, v, w, color=COLORS[th], label=th)
        ax.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=6)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="0.5", lw=0.7)
        ax.set_ylabel("Spearman", fontsize=8)
        ax.set_title(
            f"{LABEL[label]}: depth {tp['depth']}, eps {tp['eps']:g}, "
            f"{tp['n_features']} components, power {tp['power']:g}",
            fontsize=8,
        )
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=6, ncol=4)
    fig.tight_layout()
    save(fig, out / "trained.png")
    return "trained.png"


def _cell(rows, th, **w):
    s = _median(values(rows, th, "spearman", **w))
    e = _median(values(rows, th, "median_error", **w))
    return f"{s:.2f} / {e:.2g}"


def _table(rows, keys, theories, **w) -> list[str]:
    head = "| " + " | ".join(list(keys) + list(theories)) + " |"
    lines = [head, "|" + " --- |" * (len(keys) + len(theories))]
    combos = sorted(
        {tuple(r[k] for k in keys) for r in rows if all(r[k2] == v for k2, v in w.items())}
    )
    for combo in combos:
        sel = dict(zip(keys, combo), **w)
        lines.append(
            "| "
            + " | ".join([str(c) for c in combo] + [_cell(rows, th, **sel) for th in theories])
            + " |"
        )
    return lines


def write_tables(out, syn, real, trained, mlp, p) -> None:
    """``tables.md``: median Spearman / median relative time error of every theory."""
    lines = [
        "# Experiment 10: validity tables",
        "",
        "Each cell: median Spearman / median relative time error against the full-matrix "
        "flow, over the configurations of the row (NaN scores left out).",
        "",
    ]
    lines += ["## Synthetic family (over seeds, theta > 0 and eps)", ""]
    rows = [r for r in syn if r["theta"] > 0]
    lines += _table(rows, ("spectrum", "objective", "depth"), TABLE_THEORIES) + [""]
    for name in p["real"]["sets"] if real else []:
        lines += [f"## {name} (over n_features, power and eps)", ""]
        lines += _table(real, ("objective", "depth"), TABLE_THEORIES, set=name) + [""]
        stopped = unsettled([r for r in real if r["set"] == name])
        if stopped:
            lines += [
                f"{len(stopped)} of {sum(r['set'] == name for r in real)} flows did not settle "
                f"within the step budget ({p['max_steps']:,} steps; no end state, so no scores): "
                + ", ".join(
                    f"{o} L{d}" for o, d in sorted({(r["objective"], r["depth"]) for r in stopped})
                ),
                "",
            ]
    if trained:
        lines += [
            "## Trained linear models (Spearman / median error against their own "
            "learned directions)",
            "",
        ]
        lines += [
            "| set | objective | steps | " + " | ".join(TABLE_THEORIES) + " |",
            "|" + " --- |" * (3 + len(TABLE_THEORIES)),
        ]
        for r in trained:
            cells = [
                f"{r['scores'][t]['spearman']:.2f} / {r['scores'][t]['median_error']:.2g}"
                if r["scores"][t]["spearman"] is not None
                else "nan"
                for t in TABLE_THEORIES
            ]
            lines.append(
                f"| {r['set']} | {r['objective']} | {r['steps']} | " + " | ".join(cells) + " |"
            )
        lines.append("")
    for r in mlp:
        lines.append(
            f"MLP ({r['set']}, {r['objective']}), mean Spearman over seeds: "
            + ", ".join(f"{k} {v:.2f}" for k, v in r["spearman_mean"].items())
        )
    write_bytes_atomic(out / "tables.md", ("\n".join(lines) + "\n").encode())


EXPLORE_THEORIES = ("pca", "gen-dual", "gen-sxx", "rho-order")


def exploratory_summary(syn, real, p) -> dict:
    """Medians over depth >= 2 per objective and theta (synthetic) and per data set (real)
    of the exploratory ``rho-order`` theory beside the preregistered ones it builds on."""
    out = {"synthetic": {}, "real": {}}
    for label in p["objectives"]:
        out["synthetic"][label] = {
            th: {
                str(t): {
                    s: _median(values(syn, th, s, objective=label, theta=t, depth=lambda L: L >= 2))
                    for s in ("spearman", "median_error")
                }
                for t in p["theta_deg"]
            }
            for th in EXPLORE_THEORIES
        }
    for name in sorted({r["set"] for r in real}):
        out["real"][name] = {
            label: {
                th: {
                    s: _median(
                        values(real, th, s, set=name, objective=label, depth=lambda L: L >= 2)
                    )
                    for s in ("spearman", "median_error")
                }
                for th in EXPLORE_THEORIES
            }
            for label in sorted({r["objective"] for r in real})
        }
    return out


def plot_exploratory(out, summary, p) -> str:
    """EXPLORATORY: Spearman and median time error against theta (depth >= 2) of the
    rho-order prediction, beside pca, gen-dual and gen-sxx."""
    labels = list(summary["synthetic"])
    fig, axes = subplots(2, len(labels), w=3.3, h=2.6)
    for c, label in enumerate(labels):
        for th in EXPLORE_THEORIES:
            v = summary["synthetic"][label][th]
            x = [float(t) for t in v]
            for r, s in enumerate(("spearman", "median_error")):
                ax = axes[r, c]
                ax.plot(
                    x,
                    [v[t][s] for t in v],
                    marker="o",
                    ms=3,
                    color=COLORS.get(th, "k"),
                    ls="--" if th == "rho-order" else "-",
                    label=th,
                )
        axes[0, c].set_title(f"{LABEL[label]}, depth >= 2", fontsize=8)
        axes[0, c].set_ylim(-1.05, 1.05)
        axes[1, c].set_yscale("log")
        axes[1, c].set_xlabel("theta (degrees)", fontsize=8)
        for r in range(2):
            axes[r, c].tick_params(labelsize=7)
    axes[0, 0].set_ylabel("median Spearman", fontsize=8)
    axes[1, 0].set_ylabel("median rel. time error", fontsize=8)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle(
        "EXPLORATORY (after the results): gen-dual's times handed out in decreasing rho (dashed)",
        fontsize=9,
    )
    fig.tight_layout()
    save(fig, out / "exploratory_rho_order.png")
    return "exploratory_rho_order.png"

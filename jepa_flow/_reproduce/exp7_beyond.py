"""Experiment 7: beyond the paper's assumptions (theory §6 and §7).

Five relaxations, each trained by full-matrix gradient descent (population
loss, float64) and compared with the full-matrix flow of theory §6 from the
same initial state (``full_flow``) and with the balanced per-feature theory:

a. unbalanced start: ``V(0) = k u0 I``, ``W_a(0) = k^(-1/L) u0 I`` (same
   ``V Wbar``) for imbalance ``k``;
b. a random rotation ``U`` of both covariances: float64 rounding seeds the
   capture of theory §7 where the lower-influence feature is learned first;
c. covariances that do not commute: ``Syx = diag(lam) + delta K`` (``K`` the
   symmetric off-diagonal pattern), features learned in order of decreasing
   ``rho`` so that no capture is involved; how far the diagonal theory drifts;
d. EMA targets of growing time constant ``tau`` (the engine's discrete EMA is
   the continuous one with ``tau - eta``); the half-time delay against theory
   §6.2's first-order ``L tau log((rho - u0) / (u0 (2^(1/L) - 1)))``;
e. frozen teachers: a random diagonal one and a deep JEPA trained earlier;
   the student follows MAE's flow with ``lam -> c lam`` (theory §6);
f. a phase diagram of the general per-feature flow (``general_critical_time``,
   run as two ``flow = "general"`` pair sweeps): which of the pair A, B a JEPA
   learns first against the start's ``init_ratio = v0 / w0`` (stop-gradient)
   and against the EMA time constant ``tau`` (balanced start), depths 1-4.
"""

from __future__ import annotations

import tempfile

import numpy as np

from .. import (
    Params,
    collapses,
    compare,
    critical_time,
    ema_half_time_delay,
    frozen_teacher_lam,
    gaussian,
    learned_first,
    run_sweep,
)
from .. import parse_sweep_config as parse_config
from ._common import (
    choose_eta,
    claim,
    features_data,
    member,
    rel_error,
    train_run,
)
from .exp7_figures import beyond_figure, phase_figure

NAME = "7_beyond_assumptions"
TITLE = "Beyond the assumptions: imbalance, rotation, non-commuting, EMA, frozen teachers"

_BASE = {
    "lam": [1.0, 0.8],  # the canonical pair A, B
    "var": [2.0, 1.0],
    "eps": 1e-3,
    "depth": 2,
    "rotation_seed": 3,
    "nc_lam": [1.0, 0.5],  # non-commuting case: rho 1 > 0.5, learned in that order
    "nc_var": [1.0, 1.0],
    "ema_eta": 0.1,
    "teacher_depth": 3,
    "student_depth": 1,
    "teacher_seed": 0,  # c = (1.03, 0.55): the random teacher favours A more than lam does
    "imbalance_t_factor": 4.0,  # slow unbalanced members: train 4 x longer
    "steps": 20000,
    "phase_depths": [1, 2, 3, 4],
    "phase_init_ratio": [-1, 3, 33],  # logspace exponents and count; holds 10^0 = 1
    "phase_tau": [-1, 3.5, 16],  # logspace exponents and count (fixed before the EMA solver
    # could reach 1e4: kept, so the panel stays comparable)
}
PARAMS = {
    "full": {
        **_BASE,
        "imbalance": [0.5, 1.0, 2.0, 4.0],
        "rotation_depths": [1, 2, 3, 4],
        "delta": [0.0, 0.02, 0.05, 0.1, 0.2],
        "tau": [1.0, 3.0, 10.0, 30.0, 100.0],
    },
    "quick": {
        **_BASE,
        "imbalance": [0.5, 1.0, 4.0],
        "rotation_depths": [1, 2, 4],
        "delta": [0.0, 0.05, 0.2],
        "tau": [1.0, 10.0, 100.0],
    },
    "tiny": {
        **_BASE,
        "imbalance": [4.0],
        "rotation_depths": [1],
        "delta": [0.2],
        "tau": [1.0],
        "depth": 1,
        "teacher_depth": 2,
        "steps": 8000,
        "phase_init_ratio": [-1, 3, 5],
        "phase_tau": None,  # the EMA panel's implicit solver takes ~10 s to compile
    },
}


def _first_name(t_star) -> str:
    """ "A" or "B", whichever is learned first (``0 < t* < inf``, theory §10); "none" if neither."""
    i = int(learned_first(t_star))
    return "AB"[i] if i >= 0 else "none"


def _train(obj, data, lam, var, L, eps, steps, t_factor=1.0, **kw):
    eta, t_max = choose_eta(obj, lam, var, L, eps, steps)
    eta, t_max = eta * t_factor, t_max * t_factor
    eta = kw.pop("eta", eta)
    return train_run(obj, data, L, eps, eta, t_max, n_t=200, **kw)


def _unbalanced(p, ctx, num, claims, panels) -> None:
    """a. unbalanced start: trained and full-flow critical times against the imbalance k."""
    lam, var, eps, L, data, d, t_bal = ctx
    u0 = eps ** (1.0 / L)
    res = {}
    for obj in ("jepa", "mae"):
        tr, ff = [], []
        for k in p["imbalance"]:
            start = Params(
                W=np.broadcast_to(k ** (-1.0 / L) * u0 * np.eye(d), (L, d, d)).copy(),
                V=k * u0 * np.eye(d),
            )
            steps, t_factor = p["steps"], p["imbalance_t_factor"]
            r = _train(obj, data, lam, var, L, eps, steps, start=start, t_factor=t_factor)
            c = member(compare(r))
            tr.append(c.t_star_training)
            ff.append(c.t_star_full)
        res[obj] = {
            "training": np.array(tr),
            "full_flow": np.array(ff),
            "balanced_theory": t_bal[obj],
        }
    num["imbalance"] = {"k": p["imbalance"], **res}
    e_ff = max(float(rel_error(res[o]["training"], res[o]["full_flow"]).max()) for o in res)
    shift = {o: (res[o]["training"] / t_bal[o] - 1) for o in res}
    claims.append(
        claim(
            "7a.imbalance",
            f"unbalanced start (depth {L}): the full-matrix flow gives the trained "
            "critical times to 1 %; the balanced theory is off by the listed relative shifts",
            e_ff < 1e-2,
            max_rel_error_full_flow=e_ff,
            k=p["imbalance"],
            shift_vs_balanced_theory=shift,
        )
    )
    panels["a"] = (p["imbalance"], shift)


def _rotation(p, ctx, num, claims, panels) -> None:
    """b. a random rotation U: how far B's critical time moves (the capture seeded by rounding)."""
    lam, var, eps, L, data, d, t_bal = ctx
    rot = {"depth": p["rotation_depths"], "t_diag": [], "t_rot": [], "first_theory": []}
    for Lr in p["rotation_depths"]:
        r0 = _train("jepa", data, lam, var, Lr, eps, p["steps"])
        r1 = _train(
            "jepa",
            features_data(lam, var, U="random", seed=p["rotation_seed"]),
            lam,
            var,
            Lr,
            eps,
            p["steps"],
            eta=float(r0.eta[0]),
        )
        rot["t_diag"].append(member(r0).t_star)
        rot["t_rot"].append(member(r1).t_star)
        rot["first_theory"].append(_first_name(critical_time("jepa", lam, var, Lr, eps)))
    shift_rot = np.array(rot["t_rot"]) / np.array(rot["t_diag"]) - 1
    rot["shift_B"] = shift_rot[:, 1]
    rot["shift_A"] = shift_rot[:, 0]
    num["rotation"] = rot
    b_first = [i for i, f in enumerate(rot["first_theory"]) if f == "B"]
    a_first = [i for i, f in enumerate(rot["first_theory"]) if f == "A"]
    claims.append(
        claim(
            "7b.rotation",
            "JEPA under a random rotation: where B (higher rho) is learned first "
            "nothing moves (< 1e-6); where A is learned first, B is learned earlier or unchanged "
            "(rounding seeds the capture; theory §7 saw -1.5 %, -11 %, -0.35 % at depths 1-3)",
            all(abs(shift_rot[i]).max() < 1e-6 for i in b_first)
            and all(shift_rot[i, 1] <= 1e-6 for i in a_first),
            depth=p["rotation_depths"],
            first=rot["first_theory"],
            shift_t_star_B=shift_rot[:, 1],
            shift_t_star_A=shift_rot[:, 0],
        )
    )
    panels["b"] = (p["rotation_depths"], shift_rot)


def _non_commuting(p, ctx, num, claims, panels) -> None:
    """c. non-commuting covariances: full-matrix flow vs the diagonal theory's drift."""
    lam, var, eps, L, data, d, t_bal = ctx
    lam_c, var_c = np.asarray(p["nc_lam"]), np.asarray(p["nc_var"])
    K = np.ones((d, d)) - np.eye(d)
    nc = {"delta": p["delta"]}
    for obj in ("jepa", "mae"):
        e_full, e_diag = [], []
        for dl in p["delta"]:
            Syx = np.diag(lam_c) + dl * K
            dat = gaussian(Sxx=np.diag(var_c), Syx=Syx, Syy=4.0 * np.diag(var_c))
            c = compare(_train(obj, dat, lam_c, var_c, L, eps, p["steps"]), full=True)
            e_full.append(float(c.rel_error_full.max()))
            e_diag.append(float(c.rel_error_theory.max()))
        nc[obj] = {"rel_error_full_flow": e_full, "drift_diagonal_theory": e_diag}
    num["non_commuting"] = nc
    ok_full = max(max(nc[o]["rel_error_full_flow"]) for o in ("jepa", "mae"))
    claims.append(
        claim(
            "7c.non_commuting",
            f"non-commuting covariances (depth {L}): full-matrix GD follows the "
            "full-matrix flow to 1 % at every delta, while the diagonal theory's critical-time "
            "error grows with delta",
            ok_full < 1e-2
            and all(np.all(np.diff(nc[o]["drift_diagonal_theory"]) > 0) for o in ("jepa", "mae")),
            delta=p["delta"],
            max_rel_error_full_flow=ok_full,
            drift_jepa=nc["jepa"]["drift_diagonal_theory"],
            drift_mae=nc["mae"]["drift_diagonal_theory"],
        )
    )
    panels["c"] = nc


def _ema(p, ctx, num, claims, panels) -> None:
    """d. EMA targets: the half time against tau, the full EMA flow and the first-order delay."""
    lam, var, eps, L, data, d, t_bal = ctx
    ema = {"tau": p["tau"], "training": [], "full_flow": []}
    eta_e = p["ema_eta"]
    for tau in p["tau"]:
        r = _train("jepa", data, lam, var, L, eps, p["steps"], target="ema", tau=tau, eta=eta_e)
        c = member(compare(r))  # the continuous EMA of time constant tau - eta (theory §6.2)
        ema["training"].append(c.t_star_training)
        ema["full_flow"].append(c.t_star_full)
    ema["delay_training"] = np.array(ema["training"]) - t_bal["jepa"]
    ema["delay_first_order"] = ema_half_time_delay(
        lam[None, :], var[None, :], L, eps, np.array(p["tau"])[:, None]
    )
    num["ema"] = ema
    e_ema = float(rel_error(np.array(ema["training"]), np.array(ema["full_flow"])).max())
    dl_ratio = ema["delay_training"][0] / ema["delay_first_order"][0]
    claims.append(
        claim(
            "7d.ema",
            f"JEPA with an EMA target (depth {L}): the half time grows with tau, the "
            "full-matrix EMA flow gives it to 1 %, and at the smallest tau the delay is "
            "theory §6.2's first-order L tau log((rho - u0)/(u0 (2^(1/L) - 1))) to 15 %",
            bool(np.all(np.diff(np.array(ema["training"]), axis=0) > 0))
            and e_ema < 1e-2
            and bool(np.all(np.abs(dl_ratio - 1) < 0.15)),
            tau=p["tau"],
            t_star=np.array(ema["training"]),
            max_rel_error_full_flow=e_ema,
            delay_over_first_order_smallest_tau=dl_ratio,
        )
    )
    panels["d"] = ema


def _frozen_teacher(p, ctx, num, claims, panels) -> None:
    """e. frozen teachers: the student follows MAE's flow with lam -> c lam."""
    lam, var, eps, L, data, d, t_bal = ctx
    Ls, Lt = p["student_depth"], p["teacher_depth"]
    teacher_run = _train("jepa", data, lam, var, Lt, eps, p["steps"])
    t_jepa = member(teacher_run).wbar
    rng = np.random.default_rng(p["teacher_seed"])
    t_rand = np.diag(rng.uniform(0.2, 1.5, d))
    teach = {}
    for name, T in (("random", t_rand), ("jepa_trained", t_jepa)):
        c_lam = frozen_teacher_lam(lam, np.diag(T))  # the MAE flow the student follows
        eta, t_max = choose_eta("mae", c_lam, var, Ls, eps, p["steps"])
        r = train_run("jepa", data, Ls, eps, eta, t_max, n_t=200, target="frozen", teacher=T)
        c = member(compare(r))
        t_th, t_tr = c.t_star_theory, c.t_star_training
        teach[name] = {
            "c": np.diag(T),
            "t_star_theory": t_th,
            "t_star_training": t_tr,
            "first": _first_name(t_tr),
            "first_theory": _first_name(t_th),
        }
    num["frozen"] = {"student_depth": Ls, "teacher_depth": Lt, **teach}
    e_fr = max(
        float(rel_error(v["t_star_training"], v["t_star_theory"]).max()) for v in teach.values()
    )
    own = _first_name(critical_time("jepa", lam, var, Ls, eps))
    claims.append(
        claim(
            "7e.frozen_teacher",
            f"a frozen teacher: the depth-{Ls} student follows MAE's flow with "
            "lam -> c lam to 1 %; the JEPA-trained teacher (depth "
            f"{Lt}) passes on its preference: the student learns B (higher rho) first, unlike a "
            f"depth-{Ls} JEPA on its own (which learns {own} first)",
            e_fr < 1e-2
            and teach["jepa_trained"]["first"] == "B"
            and own == "A"
            and all(v["first"] == v["first_theory"] for v in teach.values()),
            max_rel_error=e_fr,
            c_jepa_teacher=teach["jepa_trained"]["c"],
            c_random_teacher=teach["random"]["c"],
            first=[teach[k]["first"] for k in teach],
        )
    )
    panels["e"] = teach


def run(out, p) -> dict:
    lam, var, eps, L = np.asarray(p["lam"]), np.asarray(p["var"]), p["eps"], p["depth"]
    data = features_data(lam, var)
    d = lam.size
    num, claims, panels = {"lam": lam, "var": var, "eps": eps, "depth": L}, [], {}
    t_bal = {o: np.asarray(critical_time(o, lam, var, L, eps)) for o in ("jepa", "mae")}

    ctx = (lam, var, eps, L, data, d, t_bal)
    for panel in (_unbalanced, _rotation, _non_commuting, _ema, _frozen_teacher):
        panel(p, ctx, num, claims, panels)
    beyond_figure(out, p, panels, L)
    _general_phase(out, p, lam, var, eps, num, claims)
    return {"figures": ["beyond.png", "phase_general.png"], **num, "claims": claims}


_PAIR_SWEEP = """
[sweep]
objective = "jepa"
flow = "general"
target = "{target}"
init_ratio = {init_ratio}
{tau}
depth = {depths}
eps = {eps!r}
[pair]
lam_a = {lam[0]!r}
var_a = {var[0]!r}
lam_b = {lam[1]!r}
var_b = {var[1]!r}
"""


def _pair_sweeps(p, lam, var, eps, depths):
    """The stop-gradient sweep over init_ratio and (when ``phase_tau``) the EMA one over tau."""
    lo, hi, n = p["phase_init_ratio"]
    fmt = dict(depths=depths, eps=float(eps), lam=[float(x) for x in lam])
    fmt["var"] = [float(x) for x in var]
    with tempfile.TemporaryDirectory() as tmp:
        text = _PAIR_SWEEP.format(
            target="stopgrad", init_ratio=f"{{logspace = [{lo}, {hi}, {n}]}}", tau="", **fmt
        )
        sg = run_sweep(parse_config(text), tmp + "/init_ratio").columns()
        ema = None
        if p["phase_tau"] is not None:
            lo_t, hi_t, n_t = p["phase_tau"]
            tau = f"tau = {{logspace = [{lo_t}, {hi_t}, {n_t}]}}"
            text = _PAIR_SWEEP.format(target="ema", init_ratio="1.0", tau=tau, **fmt)
            ema = run_sweep(parse_config(text), tmp + "/tau").columns()
    return sg, ema


def _collapse_claim(lam, var, eps, depths, ratio, first_r, t_ab, col) -> dict:
    w0 = eps ** (1.0 / np.array(depths, float))[:, None]
    predicted = collapses((ratio * w0)[..., None], w0[..., None], lam / var)
    never = all(
        np.isinf(t_ab[..., j][col[..., j]]).all() and not (first_r[col[..., j]] == j).any()
        for j in (0, 1)
    )
    first_collapse = [
        [float(ratio[c.argmax()]) if c.any() else None for c in col[i].T]
        for i in range(len(depths))
    ]
    return claim(
        "7f.general_collapse",
        "general flow, JEPA: a feature collapses exactly where v0^2 - w0^2 > rho^2 "
        "(theory §7.2, at every depth from equal layers), and a collapsed feature is never "
        "learned (t* = inf, never first)",
        bool((col == predicted).all()) and never and bool(col.any()),
        depth=depths,
        smallest_collapsing_init_ratio_AB=first_collapse,
    )


def _ema_order(ema, depths, order_balanced, phase) -> dict:
    """The EMA sweep's numbers (into ``phase``) and its claim."""
    shape = (len(depths), -1)
    tau = ema["tau"].reshape(shape)[0]
    first_t = ema["first"].reshape(shape)
    phase.update(
        tau=tau,
        first_vs_tau=first_t,
        t_ratio_vs_tau=ema["t_ratio"].reshape(shape),
        ok_vs_tau=ema["ok"].reshape(shape),
    )
    flips = [float(tau[np.argmax(f != f[0])]) if (f != f[0]).any() else None for f in first_t]
    return claim(
        "7f.general_ema_order",
        "general flow, JEPA with an EMA target (balanced start): at the smallest tau "
        "the learning order is the stop-gradient one at every depth, and every solve "
        "succeeded; the first tau where the order differs is listed per depth",
        bool((first_t[:, 0] == order_balanced).all()) and bool(ema["ok"].all()),
        depth=depths,
        tau=tau,
        first_vs_tau=first_t,
        first_flip_tau=flips,
    )


def _general_phase(out, p, lam, var, eps, num, claims) -> None:
    """f. learning order of A, B against init_ratio and tau (general flow, pair sweeps)."""
    depths = [int(x) for x in p["phase_depths"]]
    sg, ema = _pair_sweeps(p, lam, var, eps, depths)
    shape = (len(depths), -1)
    ratio = sg["init_ratio"].reshape(shape)[0]
    first_r = sg["first"].reshape(shape)
    t_ab = np.stack([sg["t_star_a"], sg["t_star_b"]], -1).reshape(len(depths), -1, 2)
    col = np.stack([sg["collapsed_a"], sg["collapsed_b"]], -1).reshape(len(depths), -1, 2)
    balanced = np.asarray(critical_time("jepa", lam, var, np.array(depths)[:, None], eps))
    order_balanced = learned_first(balanced)
    i1 = int(np.flatnonzero(ratio == 1.0)[0])
    num["general_phase"] = {
        "depth": depths,
        "init_ratio": ratio,
        "first_vs_init_ratio": first_r,  # 0: A first, 1: B first, 2: neither (both collapse)
        "t_ratio_vs_init_ratio": sg["t_ratio"].reshape(shape),
        "collapsed_vs_init_ratio": col,
        "balanced_first": order_balanced,
    }
    err = float(np.abs(t_ab[:, i1] / balanced - 1).max())
    claims.append(
        claim(
            "7f.general_balanced_row",
            "general flow, JEPA: the init_ratio = 1 row of the sweep is the balanced flow: "
            "the same first-learned feature at every depth and the exact critical times to 1e-8",
            bool((first_r[:, i1] == order_balanced).all()) and err < 1e-8,
            depth=depths,
            first=first_r[:, i1],
            first_balanced=order_balanced,
            max_rel_error=err,
        )
    )
    claims.append(_collapse_claim(lam, var, eps, depths, ratio, first_r, t_ab, col))
    if ema is not None:
        claims.append(_ema_order(ema, depths, order_balanced, num["general_phase"]))
    phase_figure(out, depths, ratio, sg["t_ratio"].reshape(shape), t_ab, col, ema)

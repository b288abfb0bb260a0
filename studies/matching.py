"""Size matching between study arms: pure functions over lesion diameters (mm).

A Turing test is only about the tumor's look if lesion *size* does not give the arm away (a
study with synthetic lesions of 16-64 mm against real ones of 11-26 mm can be answered from
size alone). With ``selection.match: size`` the real arm is drawn first, from the diameters
both arms cover, and then each synthetic arm is chosen by an optimal one-to-one assignment
(:func:`scipy.optimize.linear_sum_assignment`) of synthetic candidates to the real diameters.
:func:`balance` reports what was achieved: per-pair diameters, the median absolute
difference and two-sample tests (Mann-Whitney U, Kolmogorov-Smirnov) between the arms.

Diameters are equivalent-sphere diameters of the largest lesion (``6 V / pi`` cubed root), as
the catalog stores them for both arms.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import ks_2samp, mannwhitneyu

MATCH_MODES = ("size", "none")


def target_diameters(real_mm: Sequence[float], n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` target diameters spread over the real arm's sorted diameters, and the index (into
    ``real_mm``) of the real case each target comes from. With ``n == len(real_mm)`` every real
    case is one target; otherwise the targets sit at evenly spaced ranks (quantiles)."""
    real = np.asarray(real_mm, dtype=float)
    if n <= 0 or real.size == 0:
        return np.empty(0), np.empty(0, dtype=int)
    order = np.argsort(real, kind="stable")
    ranks = np.minimum(((np.arange(n) + 0.5) * real.size / n).astype(int), real.size - 1)
    idx = order[ranks]
    return real[idx], idx


def assign_nearest(
    targets_mm: Sequence[float] | np.ndarray, pool_mm: Sequence[float]
) -> np.ndarray:
    """Index into ``pool_mm`` of the candidate given to each target: distinct candidates that
    minimize the total absolute diameter difference (optimal assignment). Needs
    ``len(pool_mm) >= len(targets_mm)``; ties go to the lower pool index (shuffle the pool
    with a seeded generator first for a seeded tie-break)."""
    t = np.asarray(targets_mm, dtype=float)
    p = np.asarray(pool_mm, dtype=float)
    if t.size == 0:
        return np.empty(0, dtype=int)
    if p.size < t.size:
        raise ValueError(f"pool has {p.size} candidates for {t.size} targets")
    rows, cols = linear_sum_assignment(np.abs(t[:, None] - p[None, :]))
    out = np.empty(t.size, dtype=int)
    out[rows] = cols
    return out


def common_support(values_mm: Sequence[float], reference_mm: Sequence[float]) -> np.ndarray:
    """Boolean mask of ``values_mm`` inside [min, max] of ``reference_mm`` (the diameters both
    arms can offer); all True when the reference is empty."""
    v = np.asarray(values_mm, dtype=float)
    ref = np.asarray(reference_mm, dtype=float)
    if ref.size == 0:
        return np.ones(v.shape, dtype=bool)
    return (v >= ref.min()) & (v <= ref.max())


def balance(
    real_mm: Sequence[float],
    synthetic_mm: Sequence[float],
    pairs: Sequence[tuple[float, float]] = (),
) -> dict[str, float | int | list | None]:
    """How alike the two arms' diameters are (mm).

    ``median_abs_diff_mm`` is over the matched ``pairs`` (real, synthetic) when given, else
    None; ``mannwhitney_p`` (two-sided, scipy's exact/asymptotic choice) and ``ks_p``
    (two-sided) test the two arms' diameter distributions; both are None with fewer than 2
    cases in an arm. ``ranges_mm`` give [min, max] per arm.
    """
    r = np.asarray(real_mm, dtype=float)
    s = np.asarray(synthetic_mm, dtype=float)
    out: dict[str, float | int | list | None] = {
        "n_real": int(r.size),
        "n_synthetic": int(s.size),
        "real_median_mm": _round(np.median(r)) if r.size else None,
        "synthetic_median_mm": _round(np.median(s)) if s.size else None,
        "real_range_mm": [_round(r.min()), _round(r.max())] if r.size else None,
        "synthetic_range_mm": [_round(s.min()), _round(s.max())] if s.size else None,
        "median_abs_diff_mm": (
            _round(np.median([abs(a - b) for a, b in pairs])) if pairs else None
        ),
        "mannwhitney_p": None,
        "ks_p": None,
    }
    if min(r.size, s.size) >= 2:
        out["mannwhitney_p"] = _round(mannwhitneyu(r, s, alternative="two-sided").pvalue, 4)
        out["ks_p"] = _round(ks_2samp(r, s).pvalue, 4)
    return out


def _round(x: float, digits: int = 2) -> float:
    return round(float(x), digits)


def size_match_line(report: dict) -> str:
    """One line summarizing a stored size-match report (``Study.audit['size_match']``)."""
    if not report:
        return "size match: not recorded"
    mode = report.get("match", "none")

    def arm(name: str) -> str:
        rng, med = report.get(f"{name}_range_mm"), report.get(f"{name}_median_mm")
        return f"{name} {rng[0]:g}-{rng[1]:g} mm (median {med:g})" if rng else f"{name} -"

    line = f"lesion size (selection.match: {mode}): {arm('real')}, {arm('synthetic')}"
    pairs = report.get("pairs") or []
    if report.get("median_abs_diff_mm") is not None:
        line += (
            f"; median |real - synthetic| {report['median_abs_diff_mm']:g} mm over "
            f"{len(pairs)} pairs"
        )
    if report.get("mannwhitney_p") is not None:
        line += f"; Mann-Whitney p = {report['mannwhitney_p']:.3f}, KS p = {report['ks_p']:.3f}"
    return line


def pairs_line(report: dict) -> str:
    """The matched pairs as 'real mm -> synthetic mm' (empty when unmatched)."""
    pairs = (report or {}).get("pairs") or []
    if not pairs:
        return ""
    return "pairs (real mm -> synthetic mm): " + ", ".join(
        f"{p['real_mm']:g}->{p['synthetic_mm']:g}" for p in pairs
    )

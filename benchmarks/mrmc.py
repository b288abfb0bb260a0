"""Time `evaluation.mrmc.or_analysis` (jackknife and DeLong) on simulated fully crossed studies.

    python benchmarks/mrmc.py [--readers 10 --modalities 4 --cases 500 2000 10000]

Prints one Markdown row per size; results go in benchmarks/RESULTS.md (section MRMC).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from evaluation import mrmc


def simulate(n_mod: int, n_rdr: int, n_case: int, seed: int = 0) -> mrmc.RatingsData:
    rng = np.random.default_rng(seed)
    truth = rng.random(n_case) < 0.4
    case_effect = rng.normal(size=n_case)
    ratings = np.round(case_effect + 1.2 * truth + rng.normal(size=(n_mod, n_rdr, n_case)), 1)
    return mrmc.RatingsData(
        ratings,
        truth,
        tuple(f"m{i}" for i in range(n_mod)),
        tuple(f"r{j}" for j in range(n_rdr)),
        tuple(str(k) for k in range(n_case)),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readers", type=int, default=10)
    ap.add_argument("--modalities", type=int, default=4)
    ap.add_argument("--cases", type=int, nargs="+", default=[500, 2000, 10000])
    args = ap.parse_args()
    print("| modalities x readers x cases | jackknife s | DeLong s |")
    print("|---|---|---|")
    for n_case in args.cases:
        data = simulate(args.modalities, args.readers, n_case)
        times = []
        for method in ("jackknife", "delong"):
            t0 = time.perf_counter()
            mrmc.or_analysis(data, method)
            times.append(time.perf_counter() - t0)
        print(
            f"| {args.modalities} x {args.readers} x {n_case} | {times[0]:.3f} | {times[1]:.3f} |"
        )


if __name__ == "__main__":
    main()

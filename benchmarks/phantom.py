"""Phantom generation benchmark: seconds per volume and measured HU vs the literature table.

Run: ``.venv/bin/python benchmarks/phantom.py [--preset default|small] [--n 3]``. Prints a
timing table (generation in memory, without writing files) and, for the first case, the HU
mean/std per tissue measured on partial-volume-free voxels next to the table value.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from core.vocabulary import ORGANS
from synth_backend.phantom import PhantomConfig, case_seed, generate_case, measure_hu
from synth_backend.phantom.intensities import TISSUES


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=("default", "small"), default="default")
    parser.add_argument("--n", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    config = PhantomConfig.preset(args.preset)
    print(
        f"preset {args.preset}: shape {config.shape}, spacing {config.spacing} mm, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"{'case':>5} {'lesion':>9} {'seconds':>8} {'voxels (M)':>10}")
    times, first = [], None
    for i in range(args.n):
        organ = (*ORGANS, None)[i % 4]
        start = time.perf_counter()
        case = generate_case(case_seed(args.seed, i), config, lesion=organ)
        times.append(time.perf_counter() - start)
        first = first or case
        print(f"{i:>5} {organ or '-':>9} {times[-1]:>8.2f} {case.ct.size / 1e6:>10.2f}")
    print(f"mean {np.mean(times):.2f} s per volume (min {np.min(times):.2f})")
    hu = measure_hu(first)["tissues"]
    print(f"\n{'tissue':<18} {'table HU':>8} {'measured':>9} {'std':>6} {'voxels':>8}  source")
    for name, row in hu.items():
        print(
            f"{name:<18} {row['table_hu']:>8.0f} {row['mean']:>9.1f} {row['std']:>6.1f} "
            f"{row['n']:>8}  {TISSUES[name].source}"
        )


if __name__ == "__main__":
    main()

"""Synthesis benchmark: seconds per volume and peak memory per method and size class.

    python benchmarks/synthesis.py [--repeats 3] [--devices cpu,cuda]
    python benchmarks/synthesis.py --calibrate        # Pixel2Cancer steps -> diameter table

Runs on the largest real CT in ../shared/data (IRCAD patient 17, 512 x 512 x 119, liver mask),
in memory (the file is never modified). Time = one ``synthesize`` call on the full volume
(sampling + tumor growth + HU mapping + full-volume copy), file IO excluded. Peak memory =
extra resident memory of the process during the call (ru_maxrss growth over the loaded inputs,
measured in a fresh subprocess per row) and, on CUDA, ``torch.cuda.max_memory_allocated``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from core.vocabulary import SIZES  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ircadb01_patient17"


def _one(method: str, size: str, device: str, repeats: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import torch

    from synth_backend.io import load_volume
    from synth_backend.registry import get_synthesizer

    ct = load_volume(DATA / "ct.nii.gz", "ct")
    organ = load_volume(DATA / "mask_liver.nii.gz", "mask").array > 0
    name, _, count = method.partition(":")  # "pixel2cancer:9" = nine tumors per volume
    name, _, profile = name.partition("/")  # "handcrafted/vtt" = the vtt profile
    synth = get_synthesizer(name)
    extra = {"n_tumors": int(count)} if count else {}
    if profile:
        extra["profile"] = profile
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, stats = [], []
    for seed in range(repeats):
        t0 = time.perf_counter()
        res = synth.synthesize(
            ct.array,
            organ,
            organ="liver",
            spacing=ct.spacing,
            seed=seed,
            device=device,
            size=size,
            **extra,
        )
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
        stats.append(int(res.tumor_mask.sum()))
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024.0
    row = {
        "method": method,
        "size": size,
        "device": device,
        "s_median": float(np.median(times)),
        "s_max": float(np.max(times)),
        "peak_mib": peak,
        "tumor_voxels": stats,
    }
    if device == "cuda":
        row["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return row


def calibrate(seeds: int = 3, steps=(5, 10, 20, 30, 40, 60, 80, 100, 120, 150, 200)) -> None:
    sys.path.insert(0, str(ROOT))
    import torch

    from synth_backend.pixel2cancer.automaton import Automaton

    n = int(max(steps) * 0.5) + 30
    rows = {s: [] for s in steps}
    for seed in range(seeds):
        state = torch.zeros((n, n, n), dtype=torch.int32)
        level = torch.zeros((n, n, n), dtype=torch.int64)
        state[n // 2, n // 2, n // 2] = 5
        ca = Automaton(state, level, (1.0, 0.3, 0.1), torch.Generator().manual_seed(seed))
        for i in range(1, max(steps) + 1):
            ca.step()
            if i in rows:
                v = int((ca.unpadded_state() != 0).sum())
                rows[i].append((6 * v / np.pi) ** (1 / 3))
    print("| steps | median diameter mm | min | max |\n|---|---|---|---|")
    for s, d in rows.items():
        print(f"| {s} | {np.median(d):.1f} | {min(d):.1f} | {max(d):.1f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--methods",
        default="handcrafted,handcrafted/vtt,pixel2cancer,pixel2cancer:9",
        help="comma list of METHOD[/PROFILE][:K]; K = tumors per volume "
        "(--n-tumors K); pixel2cancer:9 = the reference's most seed clusters",
    )
    ap.add_argument("--devices", default=None, help="default: cpu, plus cuda when available")
    ap.add_argument("--calibrate", action="store_true")
    ap.add_argument("--_row", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.calibrate:
        calibrate()
        return
    if args._row:
        method, size, device = args._row.split(",")
        print(json.dumps(_one(method, size, device, args.repeats)))
        return
    import torch

    devices = (
        args.devices.split(",")
        if args.devices
        else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    print(
        "| method | size | device | s/volume (median) | s/volume (max) | peak RSS MiB "
        "| CUDA peak MiB |\n|---|---|---|---|---|---|---|"
    )
    for method in args.methods.split(","):
        for size in SIZES:
            for device in devices:
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--_row",
                        f"{method},{size},{device}",
                        "--repeats",
                        str(args.repeats),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                r = json.loads(out.stdout.strip().splitlines()[-1])
                cuda = f"{r['cuda_peak_mib']:.0f}" if "cuda_peak_mib" in r else "-"
                print(
                    f"| {method} | {size} | {device} | {r['s_median']:.2f} | "
                    f"{r['s_max']:.2f} | {r['peak_mib']:.0f} | {cuda} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()

"""Seconds per sample of the learning-based methods at the reference patch size (96^3 at 1 mm).

Times the full per-patch model path (encode the context, all denoising / flow steps, decode;
TumorGen also the mask refiner) for DiffTumor early (T = 4 DDPM), TumorGen RFM-10 and RFM-50,
with randomly initialised networks of the chosen preset: timing depends on the architecture,
not on the weights. Peak memory is CUDA's max allocated, or the process's peak RSS on CPU.

    python benchmarks/generative.py --preset full --device cpu --repeats 2
    python benchmarks/generative.py --preset full --device cuda --batch 8 --bf16

Prints one Markdown table row per method (paste into benchmarks/RESULTS.md, "Generative").
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synth_backend.autoencoder.model import build_autoencoder
from synth_backend.base import resolve_device
from synth_backend.difftumor.model import build_unet
from synth_backend.difftumor.sample import DiffTumorModel
from synth_backend.difftumor.sample import sample_patch as difftumor_sample
from synth_backend.training.config import build_config
from synth_backend.tumorgen.model import TumorGenNet
from synth_backend.tumorgen.sample import TumorGenModel
from synth_backend.tumorgen.sample import sample_patch as tumorgen_sample

REFERENCE = {
    "difftumor-T4": "1.226 s (DDPM-50), 1.133 s (DDIM-50), TumorGen paper, GPU",
    "tumorgen-RFM10": "0.218 s, TumorGen paper (PET 128x128x64), GPU",
    "tumorgen-RFM50": "1.061 s, TumorGen paper, GPU",
}


def build_models(preset: str, device: str, patch: int):
    ae_cfg = build_config("autoencoder", preset, overrides=[f"patch_size={patch}"])
    dt_cfg = build_config("difftumor", preset)
    tg_cfg = build_config("tumorgen", preset)
    torch.manual_seed(0)  # random init of the timed networks only (weights do not matter)
    ae = build_autoencoder(ae_cfg["model"]).eval().requires_grad_(False).to(device)
    c = int(ae_cfg["model"]["latent_channels"])
    unet = build_unet(dt_cfg["model"], c).eval().requires_grad_(False).to(device)
    net = TumorGenNet(tg_cfg["model"], ae_cfg["model"]).eval().requires_grad_(False).to(device)
    dt = DiffTumorModel(ae, unet, dt_cfg, ae_cfg, 1.0, "<random>", 0)
    tg = TumorGenModel(ae, net, tg_cfg, ae_cfg, 1.0, "<random>", 0)
    return dt, tg


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def time_call(fn, device: str, repeats: int) -> float:
    fn()  # warm-up (cuDNN autotune, allocator)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="full", choices=["tiny", "full"])
    parser.add_argument("--patch", type=int, default=96)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    dt, tg = build_models(args.preset, device, args.patch)
    b, p = args.batch, args.patch
    x = torch.zeros(b, 1, p, p, p, device=device)
    mask = torch.zeros_like(x)
    mask[..., p // 2 - 6 : p // 2 + 6, p // 2 - 6 : p // 2 + 6, p // 2 - 6 : p // 2 + 6] = 1
    box = torch.zeros(b, 1, p // 4, p // 4, p // 4, device=device)
    box[..., p // 8 - 2 : p // 8 + 2, p // 8 - 2 : p // 8 + 2, p // 8 - 2 : p // 8 + 2] = 1
    gen = torch.Generator(device=device).manual_seed(0)
    cast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if args.bf16 and device.startswith("cuda")
        else torch.autocast("cpu", enabled=False)
    )
    runs = {
        "difftumor-T4": lambda: difftumor_sample(dt, x, mask, gen),
        "tumorgen-RFM10": lambda: tumorgen_sample(tg, x, box, gen, 10),
        "tumorgen-RFM50": lambda: tumorgen_sample(tg, x, box, gen, 50),
    }
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    threads = torch.get_num_threads()
    print("| method | device | preset | patch | batch | s / sample | peak MB | reference |")
    print("|---|---|---|---|---|---|---|---|")
    for method, fn in runs.items():
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        with torch.inference_mode(), cast:
            sec = time_call(fn, device, args.repeats) / b
        print(
            f"| {method} | {name} ({threads} threads) | {args.preset} | {p}^3 | {b} | "
            f"{sec:.3f} | {peak_memory_mb(device):.0f} | {REFERENCE[method]} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

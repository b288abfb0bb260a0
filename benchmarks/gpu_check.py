"""One script for the day a GPU is there: proves every method's CUDA path and times it.

    python benchmarks/gpu_check.py                       # CUDA, IRCAD liver, writes RESULTS.md
    python benchmarks/gpu_check.py --device cpu --smoke  # seconds on a CPU (run by the tests)

Sections of the table it writes into ``benchmarks/RESULTS.md`` (between the ``gpu-check``
markers, replacing the previous run; ``--results`` writes elsewhere):

1. every method on the IRCAD 3D-IRCADb-01 patient 17 liver (built at run time, never
   stored): the same seed twice on the device gives identical output; CPU vs device tumor
   statistics (voxels, mean HU, contrast to a 5 mm parenchyma shell); seconds per volume;
2. 200 training steps per learned model at the ``full`` preset with bf16 autocast: steps/s
   and peak GPU memory (the IRCAD case as data, a throw-away output folder);
3. DiffTumor T=4 and TumorGen RFM-10 seconds per 96^3 sample at batch 8 (goal < 0.1 s on an
   H100/H200; papers: 1.226 s DDPM-50, 0.218 s RFM-10).

The learned methods of section 1 use the shipped weights (synth_backend/weights/). Sized to
finish in under 8 minutes on one H100/H200. ``--smoke`` shrinks everything (a small phantom
case instead of IRCAD, tiny presets, 3 training steps, 32^3 patches at batch 2) so that the
whole path runs on a CPU in the test suite; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from _results_block import replace_block  # noqa: E402

from synth_backend.registry import registered_methods  # noqa: E402

IRCAD = REPO.parent / "shared" / "data" / "ircadb01_patient17"
METHODS = registered_methods()
BEGIN, END = "<!-- gpu-check:begin -->", "<!-- gpu-check:end -->"


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def load_case(smoke: bool, work: Path):
    """(ct HU, liver mask, spacing, label) of the check case."""
    from synth_backend.io import load_volume

    if not smoke and (IRCAD / "ct.nii.gz").is_file():
        ct = load_volume(IRCAD / "ct.nii.gz", "ct")
        liver = load_volume(IRCAD / "mask_liver.nii.gz", "mask")
        return ct.array.astype(np.float32), liver.array > 0, ct.spacing, "IRCAD patient 17 liver"
    if not smoke:
        raise SystemExit(f"{IRCAD}: IRCAD test data not found; pass --smoke or stage shared/data")
    from synth_backend.phantom import PhantomConfig, generate_cohort

    cohort = generate_cohort(
        work / "phantom",
        n=1,
        seed=0,
        lesion_fraction=0.0,
        config=PhantomConfig.small(),
        progress=False,
    )
    case = cohort / "phantom_0000"
    ct = load_volume(case / "ct.nii.gz", "ct")
    liver = load_volume(case / "segmentations" / "liver.nii.gz", "mask")
    return ct.array.astype(np.float32), liver.array > 0, ct.spacing, "phantom liver (smoke)"


def tumor_stats(ct_out: np.ndarray, tumor: np.ndarray, organ: np.ndarray, spacing) -> dict:
    from scipy import ndimage

    if not tumor.any():
        return {"voxels": 0, "mean_hu": float("nan"), "contrast_hu": float("nan")}
    dist = ndimage.distance_transform_edt(~tumor, sampling=spacing)
    shell = (dist > 0) & (dist <= 5.0) & organ
    mean = float(ct_out[tumor].mean())
    return {
        "voxels": int(tumor.sum()),
        "mean_hu": mean,
        "contrast_hu": mean - float(ct_out[shell].mean()) if shell.any() else float("nan"),
    }


def check_methods(case, device: str) -> list[str]:
    from synth_backend.registry import get_synthesizer

    ct, organ, spacing, label = case
    rows = [
        "| method | device | same seed twice identical | s / volume (device) | "
        "tumor voxels CPU / device | mean HU CPU / device | contrast HU CPU / device |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        synth = get_synthesizer(method)

        def run(dev: str, synth=synth):
            return synth.synthesize(ct, organ, organ="liver", spacing=spacing, seed=0, device=dev)

        run(device)  # warm-up: model load, cuDNN autotune
        _sync(device)
        t0 = time.perf_counter()
        a = run(device)
        _sync(device)
        sec = time.perf_counter() - t0
        b = run(device)
        same = np.array_equal(a.ct, b.ct) and np.array_equal(a.tumor_mask, b.tumor_mask)
        cpu = run("cpu") if device != "cpu" else a
        sa = tumor_stats(a.ct, a.tumor_mask > 0, organ, spacing)
        sc = tumor_stats(cpu.ct, cpu.tumor_mask > 0, organ, spacing)
        rows.append(
            f"| {method} | {device} | {'yes' if same else '**no**'} | {sec:.2f} | "
            f"{sc['voxels']} / {sa['voxels']} | {sc['mean_hu']:.1f} / {sa['mean_hu']:.1f}"
            f" | {sc['contrast_hu']:.1f} / {sa['contrast_hu']:.1f} |"
        )
        print(rows[-1], flush=True)
    return [f"Case: {label}.", "", *rows]


def check_training(case, device: str, smoke: bool, work: Path, steps: int) -> list[str]:
    """``steps`` training steps per learned model (full preset, bf16 on CUDA)."""
    from synth_backend.autoencoder.train import train_autoencoder
    from synth_backend.difftumor.train import train_difftumor
    from synth_backend.io import save_volume
    from synth_backend.training.config import build_config
    from synth_backend.training.data import Case
    from synth_backend.tumorgen.train import train_tumorgen

    ct, organ, spacing, _ = case
    folder = work / "train_case"
    affine = np.diag([*spacing, 1.0])
    save_volume(ct, affine, folder / "ct.nii.gz", "ct")
    save_volume(organ.astype(np.uint8), affine, folder / "liver.nii.gz", "mask")
    cases = [Case("check", folder / "ct.nii.gz", (folder / "liver.nii.gz",))]
    preset = "tiny" if smoke else "full"
    sets = [f"train.steps={steps}", f"train.save_every={steps + 1}", "train.amp=true"]
    rows = [
        "| model | preset | steps | steps / s | peak GPU memory GiB | final loss |",
        "|---|---|---|---|---|---|",
    ]
    ae_final = None
    for method in ("autoencoder", "difftumor", "tumorgen"):
        cfg = build_config(
            method,
            preset,
            overrides=sets + (["patch_size=32"] if smoke and method == "autoencoder" else []),
        )
        out = work / f"train_{method}"
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        if method == "autoencoder":
            final = ae_final = train_autoencoder(cases, cfg, out, device=device, progress=False)
        elif method == "difftumor":
            final = train_difftumor(cases, cfg, ae_final, out, device=device, progress=False)
        else:
            final = train_tumorgen(cases, cfg, ae_final, out, device=device, progress=False)
        _sync(device)
        sec = time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0
        loss = np.genfromtxt(Path(final).parent / "loss.csv", delimiter=",", names=True)["loss"]
        rows.append(
            f"| {method} | {preset} | {steps} | {steps / sec:.2f} | "
            f"{peak:.1f} | {float(np.atleast_1d(loss)[-1]):.4f} |"
        )
        print(rows[-1], flush=True)
    return [
        "Steps/s include the data loader (cached 1 mm organ-box crops, first load included)"
        " and, for DiffTumor/TumorGen, the frozen autoencoder.",
        "",
        *rows,
    ]


def check_sampling(device: str, smoke: bool, batch: int) -> list[str]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from generative import build_models, time_call

    from synth_backend.difftumor.sample import sample_patch as difftumor_sample
    from synth_backend.tumorgen.sample import sample_patch as tumorgen_sample

    p = 32 if smoke else 96
    dt, tg = build_models("tiny" if smoke else "full", device, p)
    x = torch.zeros(batch, 1, p, p, p, device=device)
    mask = torch.zeros_like(x)
    c = p // 2
    mask[..., c - 6 : c + 6, c - 6 : c + 6, c - 6 : c + 6] = 1
    box = torch.zeros(batch, 1, p // 4, p // 4, p // 4, device=device)
    box[..., p // 8 - 2 : p // 8 + 2, p // 8 - 2 : p // 8 + 2, p // 8 - 2 : p // 8 + 2] = 1
    gen = torch.Generator(device=device).manual_seed(0)
    cast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.startswith("cuda")
        else torch.autocast("cpu", enabled=False)
    )
    rows = ["| sampler | patch | batch | s / sample | goal | paper |", "|---|---|---|---|---|---|"]
    for name, fn, paper in (
        ("DiffTumor T=4 DDPM", lambda: difftumor_sample(dt, x, mask, gen), "1.226 s (DDPM-50)"),
        ("TumorGen RFM-10", lambda: tumorgen_sample(tg, x, box, gen, 10), "0.218 s"),
    ):
        with torch.inference_mode(), cast:
            sec = time_call(fn, device, 1 if smoke else 3) / batch
        rows.append(f"| {name} | {p}^3 | {batch} | {sec:.4f} | < 0.1 s (H100/H200) | {paper} |")
        print(rows[-1], flush=True)
    return [
        "Randomly initialised full-preset networks (time depends on the architecture, not "
        "the weights), bf16 autocast on CUDA.",
        "",
        *rows,
    ]


def write_results(path: Path, lines: list[str]) -> None:
    replace_block(path, BEGIN, END, lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", help="cuda | cuda:N | cpu")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: proves the path on a CPU")
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    ap.add_argument("--train-steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=None)
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(
            "no CUDA device visible; run on a GPU machine or pass --device cpu --smoke"
        )
    steps = args.train_steps or (3 if args.smoke else 200)
    batch = args.batch or (2 if args.smoke else 8)
    t0 = time.perf_counter()
    name = (
        torch.cuda.get_device_name(args.device)
        if args.device.startswith("cuda")
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        case = load_case(args.smoke, work)
        lines = [
            f"### GPU check ({'smoke, numbers meaningless' if args.smoke else 'full'})",
            "",
            f"Device: {name}; torch {torch.__version__}; written by `benchmarks/gpu_check.py`.",
            "",
            "#### 1. Every method's device path",
            "",
        ]
        lines += check_methods(case, args.device)
        lines += ["", f"#### 2. Training steps, bf16 ({steps} per model)", ""]
        lines += check_training(case, args.device, args.smoke, work, steps)
        lines += ["", "#### 3. Sampling speed", ""]
        lines += check_sampling(args.device, args.smoke, batch)
    lines += ["", f"Total wall time {time.perf_counter() - t0:.0f} s."]
    write_results(args.results, lines)
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

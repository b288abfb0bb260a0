"""Are the shipped learned weights usable? Figures on livers held out from their training.

    python benchmarks/learned_usability.py --seeds 4 --previews /tmp/previews

Held-out cases (never in the training data of synth_backend/weights/): 3D-IRCADb-01 patients
17 and 1 (liver masks; the IRCAD license forbids derivatives, so everything derived is built
here at run time and only numbers are written) and TotalSegmentator's contrast-enhanced slab
``example_ct_dicom`` (liver = label 5 of its ``example_seg_dicom``). Figures:

- autoencoder reconstruction: mean absolute error in HU over liver voxels of 32^3 1 mm patches
  centred in the liver (both images clipped to the autoencoder's HU window; goal <= 15 HU);
- per synthetic lesion (DiffTumor early, TumorGen): contrast = mean HU in the mask minus the
  mean of the organ ring within 5 mm outside it (``tumor_statistics``; goal -80..-10 HU), the
  darkest voxel (goal >= -100 HU), the share of the mask inside the organ, sphericity
  pi^(1/3) (6V)^(2/3) / A of the largest component (marching cubes surface; 1 = sphere,
  0.52 = cube) and, for TumorGen, image-mask alignment: DSC between its mask and the voxels
  its own image darkened by > 15 HU.

Writes a Markdown block between the ``learned-usability`` markers of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from _results_block import replace_block  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
BEGIN, END = "<!-- learned-usability:begin -->", "<!-- learned-usability:end -->"


def held_out_cases():
    """(name, Case) of the held-out livers."""
    from synth_backend.training.data import Case

    ts = SHARED / "totalseg_example"
    return [
        (
            "IRCAD 17",
            Case(
                "ircad17",
                SHARED / "ircadb01_patient17" / "ct.nii.gz",
                (SHARED / "ircadb01_patient17" / "mask_liver.nii.gz",),
            ),
        ),
        (
            "IRCAD 01",
            Case(
                "ircad01",
                SHARED / "ircadb01_patient01" / "ct.nii.gz",
                (SHARED / "ircadb01_patient01" / "mask_liver.nii.gz",),
            ),
        ),
        (
            "TotalSeg dicom slab",
            Case(
                "ts_dicom",
                ts / "example_ct_dicom.nii.gz",
                (ts / "example_seg_dicom.nii.gz",),
                organ_labels=(5,),
            ),
        ),
    ]


def autoencoder_mae(case, n_patches: int, seed: int) -> float:
    """MAE (HU) of the shipped autoencoder over liver voxels of patches centred in the liver."""
    from scipy import ndimage

    from synth_backend.autoencoder.model import hu_to_unit, load_autoencoder, unit_to_hu
    from synth_backend.training.data import crop_patch, load_case
    from synth_backend.weights import AUTOENCODER, default_checkpoint

    ae_path = Path(default_checkpoint("difftumor")).with_name(AUTOENCODER)
    ae, payload = load_autoencoder(ae_path)
    window, p = payload["config"]["hu_window"], int(payload["config"]["patch_size"])
    loaded = load_case(case)
    inner = ndimage.binary_erosion(loaded.organ, iterations=p // 4)
    coords = np.argwhere(inner if inner.any() else loaded.organ)
    rng = np.random.default_rng(seed)
    errors, weights = [], []
    for c in coords[rng.choice(len(coords), size=n_patches, replace=False)]:
        ct = crop_patch(loaded.ct, c, p, -1024.0)
        organ = crop_patch(loaded.organ, c, p, False)
        x = torch.from_numpy(hu_to_unit(ct, window)[None, None])
        with torch.no_grad():
            rec = ae.decode(ae.encode(x)[0])[0, 0].numpy()
        ref = np.clip(ct, *window)
        err = np.abs(unit_to_hu(rec, window) - ref)[organ]
        errors.append(float(err.sum()))
        weights.append(int(organ.sum()))
    return float(np.sum(errors) / max(np.sum(weights), 1))


def sphericity(mask: np.ndarray, spacing) -> float:
    from scipy import ndimage
    from skimage.measure import marching_cubes, mesh_surface_area

    labels, n = ndimage.label(mask)
    if n == 0:
        return float("nan")
    largest = labels == (np.argmax(np.bincount(labels.ravel())[1:]) + 1)
    padded = np.pad(largest, 1).astype(np.float32)
    verts, faces, _, _ = marching_cubes(padded, 0.5, spacing=tuple(spacing))
    area = mesh_surface_area(verts, faces)
    volume = float(largest.sum()) * float(np.prod(spacing))
    return float(np.pi ** (1 / 3) * (6 * volume) ** (2 / 3) / area)


def lesion_rows(
    method: str, cases, seeds: int, previews: Path | None, checkpoint: Path | None = None, **options
) -> list[dict]:
    from synth_backend.io import load_volume
    from synth_backend.preview import render_preview
    from synth_backend.provenance import tumor_statistics
    from synth_backend.registry import get_synthesizer
    from synth_backend.training.data import _union

    synth = get_synthesizer(method, **({"checkpoint": checkpoint} if checkpoint else {}))
    rows = []
    for name, case in cases:
        ct = load_volume(case.ct, "ct")
        organ = _union(ct, case.organ, case.organ_labels)
        hu = ct.array.astype(np.float32)
        for seed in range(seeds):
            t0 = time.perf_counter()
            res = synth.synthesize(
                hu, organ, organ="liver", spacing=ct.spacing, seed=seed, device="cpu", **options
            )
            sec = time.perf_counter() - t0
            tumor = res.tumor_mask > 0
            stats = tumor_statistics(res.ct, tumor, organ, ct.spacing)
            row = {
                "method": method,
                "case": name,
                "seed": seed,
                "seconds": sec,
                "voxels": int(tumor.sum()),
                "diameter": stats["equivalent_diameter_mm"],
                "contrast": stats["hu_contrast"],
                "min_hu": float(res.ct[tumor].min()) if tumor.any() else float("nan"),
                "inside": float((tumor & organ).sum() / max(tumor.sum(), 1)),
                "sphericity": sphericity(tumor, ct.spacing),
            }
            if method == "tumorgen":
                darker = (hu - res.ct) > 15.0
                row["dsc"] = float(2 * (darker & tumor).sum() / max(darker.sum() + tumor.sum(), 1))
            rows.append(row)
            if previews is not None:
                from PIL import Image

                previews.mkdir(parents=True, exist_ok=True)
                image = render_preview(res.ct, tumor, ct.spacing)
                tag = f"{method}{''.join(f'_{v}' for v in options.values())}_{case.name}_{seed}"
                Image.fromarray(image).save(previews / f"{tag}.png")
                zoom = zoomed_axial(hu, res.ct, tumor, ct.spacing)
                Image.fromarray(zoom).save(previews / f"{tag}_zoom.png")
            print(row, flush=True)
    return rows


def zoomed_axial(
    before: np.ndarray,
    after: np.ndarray,
    tumor: np.ndarray,
    spacing,
    half_mm: float = 30.0,
    px_per_mm: int = 4,
) -> np.ndarray:
    """Axial slice through the tumor, 2 * ``half_mm`` wide: before | after | after + outline
    (abdomen window W400 L40), as an RGB uint8 array."""
    from PIL import Image
    from scipy import ndimage

    from synth_backend.preview import tumor_center

    cx, cy, cz = tumor_center(tumor)
    hx, hy = (int(round(half_mm / s)) for s in spacing[:2])
    box = (slice(max(cx - hx, 0), cx + hx), slice(max(cy - hy, 0), cy + hy), cz)
    panels = []
    for img, outline in ((before, False), (after, False), (after, True)):
        sl = img[box].T
        gray = (np.clip((sl + 160) / 400, 0, 1) * 255).astype(np.uint8)
        rgb = np.repeat(gray[..., None], 3, axis=2)
        if outline:
            m = tumor[box].T
            rgb[m & ~ndimage.binary_erosion(m)] = (255, 40, 40)
        size = (
            int(sl.shape[1] * spacing[0] * px_per_mm),
            int(sl.shape[0] * spacing[1] * px_per_mm),
        )
        panels.append(
            np.asarray(
                Image.fromarray(rgb).resize(size, Image.BILINEAR if not outline else Image.NEAREST)
            )
        )
    return np.concatenate([np.pad(p, ((0, 0), (0, 6), (0, 0))) for p in panels], axis=1)


def _fmt(values, digits=1) -> str:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if not len(v):
        return "n/a"
    return f"{v.mean():.{digits}f} ({v.min():.{digits}f} .. {v.max():.{digits}f})"


def write_results(path: Path, lines: list[str]) -> None:
    replace_block(path, BEGIN, END, lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--patches", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--previews",
        type=Path,
        help="write preview PNGs here (never commit the IRCAD ones: derivatives)",
    )
    ap.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    ap.add_argument("--difftumor", type=Path, help="checkpoint (default: the shipped one)")
    ap.add_argument("--tumorgen", type=Path, help="checkpoint (default: the shipped one)")
    ap.add_argument("--cases", type=int, default=None, help="first N held-out cases only")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = held_out_cases()[: args.cases]
    lines = [
        "### Shipped small weights: usability on held-out livers (CPU)",
        "",
        "Written by `benchmarks/learned_usability.py` (held-out: IRCAD 17, IRCAD 01, "
        "TotalSegmentator `example_ct_dicom`; mean (min .. max) over cases x seeds).",
        "",
        "| case | autoencoder MAE on liver patches, HU (goal <= 15) |",
        "|---|---|",
    ]
    for name, case in cases:
        mae = autoencoder_mae(case, args.patches, seed=0)
        lines.append(f"| {name} | {mae:.1f} |")
        print(lines[-1], flush=True)
    lines += [
        "",
        "| method | lesions | diameter mm | contrast HU (goal -80..-10) | darkest voxel "
        "HU (goal >= -100) | inside organ | sphericity | TumorGen alignment DSC | "
        "s / volume | lesions meeting both HU goals |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    runs = (
        ("DiffTumor early (default)", "difftumor", {}),
        ("DiffTumor late (`--size medium`)", "difftumor", {"size": "medium"}),
        ("TumorGen (default)", "tumorgen", {}),
    )
    for label, method, options in runs:
        rows = lesion_rows(
            method, cases, args.seeds, args.previews, getattr(args, method), **options
        )
        made = [r for r in rows if r["voxels"]]
        lines.append(
            f"| {label} | {len(made)} / {len(rows)} | {_fmt([r['diameter'] for r in made])} | "
            f"{_fmt([r['contrast'] for r in made])} | {_fmt([r['min_hu'] for r in made], 0)} | "
            f"{_fmt((r['inside'] for r in made), 3)} | {_fmt((r['sphericity'] for r in made), 2)}"
            f" | {_fmt((r.get('dsc') for r in made), 2) if method == 'tumorgen' else '-'} | "
            f"{_fmt((r['seconds'] for r in rows), 1)} |"
        )
        print(lines[-1], flush=True)
        share = (
            [np.mean([-80 <= (r["contrast"] or 0) <= -10 and r["min_hu"] >= -100 for r in made])]
            if made
            else [float("nan")]
        )
        lines[-1] += f" {share[0]:.0%} in goal |" if made else ""
    write_results(args.results, lines)
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

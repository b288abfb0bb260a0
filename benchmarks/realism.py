"""Realism table: the machine Turing test on the IRCAD liver (issue 11, section 3).

    python benchmarks/realism.py [--work DIR] [--per-size 1] [--methods handcrafted,...]

Real arm: the 9 real liver tumors with manual masks of IRCAD patients 17 (2) and 1 (7), from
``../shared/data``. Synthetic arm, per method: one tumor per real tumor size (the real tumors'
equivalent diameters, ``--per-size`` tumors each), put into the **tumor-free** liver of IRCAD
patients 1, 7 and 17 in turn (liver minus every real tumor / cyst dilated by 10 mm), each with
its own seed (``--seed S``: a replicate with seeds 10000 S + k). Methods: hand-crafted (default profile and ``vtt`` profile, skipped when the
installed code has no ``profile`` option) and Pixel2Cancer, all on CPU.

Derived volumes (organ masks, synthetic CTs) are written under ``--work`` (default: a temporary
folder, deleted at the end unless ``--keep``): the IRCAD license forbids shipping modified
copies, so nothing derived is ever written inside the repository. Prints the realism table
(``turingct evaluate realism`` on those files) as Markdown for ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"
REAL = {
    "ircadb01_patient17": ["mask_livertumor1", "mask_livertumor2"],
    "ircadb01_patient01": [f"mask_livertumor0{i}" for i in range(1, 8)],
}
EXCLUDE = {"ircadb01_patient01": ["mask_liverkyst"]}  # not a tumor, but not healthy liver
HOSTS = ("ircadb01_patient01", "ircadb01_patient07", "ircadb01_patient17")
MARGIN_MM = 10.0
METHODS = {
    "handcrafted": ("handcrafted", {}),
    "handcrafted:vtt": ("handcrafted", {"profile": "vtt"}),
    "pixel2cancer": ("pixel2cancer", {}),
}


def real_cases_csv(work: Path) -> tuple[Path, list[float]]:
    """The real arm as a cases CSV (one row per IRCAD tumor file) and their equivalent
    diameters (mm)."""
    from synth_backend.geometry import equivalent_diameter_mm
    from synth_backend.io import load_volume

    rows, diameters = [], []
    for patient, masks in REAL.items():
        for m in masks:
            path = DATA / patient / f"{m}.nii.gz"
            mask = load_volume(path, "mask")
            diameters.append(equivalent_diameter_mm(int((mask.array > 0).sum()), mask.spacing))
            rows.append(
                {
                    "ct": str(DATA / patient / "ct.nii.gz"),
                    "mask": str(path),
                    "organ": "liver",
                    "arm": "real",
                }
            )
    out = work / "real_cases.csv"
    with out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["ct", "mask", "organ", "arm"])
        writer.writeheader()
        writer.writerows(rows)
    return out, diameters


def tumor_free_liver(patient: str, work: Path) -> Path:
    """Liver minus every annotated lesion dilated by MARGIN_MM, saved on the CT grid (tmp)."""
    from scipy import ndimage

    from synth_backend.io import load_volume, save_like

    ct = load_volume(DATA / patient / "ct.nii.gz", "ct")
    liver = load_volume(DATA / patient / "mask_liver.nii.gz", "mask").array > 0
    lesions = np.zeros_like(liver)
    for m in REAL.get(patient, []) + EXCLUDE.get(patient, []):
        lesions |= load_volume(DATA / patient / f"{m}.nii.gz", "mask").array > 0
    if lesions.any():
        dist = ndimage.distance_transform_edt(~lesions, sampling=ct.spacing)
        liver &= dist > MARGIN_MM
    out = work / "organ_masks" / f"{patient}_tumor_free_liver.nii.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    save_like(ct, liver.astype(np.uint8), out, "mask")
    return out


def synthesize(
    method: str,
    diameters: list[float],
    masks: dict[str, Path],
    work: Path,
    per_size: int,
    seed: int = 0,
) -> Path | None:
    """One output per (size, repeat), hosts in turn; None when the method/profile is absent."""
    from synth_backend.runner import synthesize_file

    name, options = METHODS[method]
    out_root = work / "synthetic" / method.replace(":", "_")
    k = 0
    for rep in range(per_size):
        for d in diameters:
            host = HOSTS[k % len(HOSTS)]
            out = out_root / f"{k:02d}_{host}_{d:.0f}mm"
            if not (out / "provenance.json").is_file():
                try:
                    synthesize_file(
                        name,
                        DATA / host / "ct.nii.gz",
                        masks[host],
                        organ="liver",
                        out_dir=out,
                        seed=10_000 * seed + 1000 * rep + k,
                        device="cpu",
                        diameter_mm=round(d, 1),
                        **options,
                    )
                except ValueError as exc:
                    if options and "unknown" in str(exc):
                        print(f"skipping {method}: {exc}", flush=True)
                        return None
                    raise
            k += 1
    return out_root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--per-size", type=int, default=1)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--cnn-epochs", type=int, default=40)
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="replicate: synthesis seeds 10000 * seed + k, CV/CNN seed",
    )
    parser.add_argument("--label", default="", help="tag for the printed table (e.g. before)")
    args = parser.parse_args()
    if not (DATA / "README.md").is_file():
        print(f"IRCAD data not found at {DATA}", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="turingct-realism-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        cases, diameters = real_cases_csv(work)
        print("real tumor diameters (mm):", ", ".join(f"{d:.1f}" for d in diameters))
        masks = {h: tumor_free_liver(h, work) for h in HOSTS}
        synthetic = []
        for method in args.methods.split(","):
            t = time.perf_counter()
            out = synthesize(method, diameters, masks, work, args.per_size, args.seed)
            if out is not None:
                synthetic.append(f"{method}={out}")
                print(f"{method}: synthesized in {time.perf_counter() - t:.0f} s", flush=True)
        t_synth = time.perf_counter() - t0
        from turingct.cli import main as cli

        table = work / "realism.csv"
        rc = cli(
            [
                "evaluate",
                "realism",
                "--real",
                str(cases),
                "--synthetic",
                *synthetic,
                "--organ",
                "liver",
                "--out",
                str(table),
                "--cnn-epochs",
                str(args.cnn_epochs),
                "--seed",
                str(args.seed),
            ]
        )
        if rc:
            return rc
        report(work, args.label, t_synth, time.perf_counter() - t0 - t_synth)
    finally:
        if args.keep or args.work is not None:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def report(work: Path, label: str, t_synth: float, t_eval: float) -> None:
    """Markdown: the AUC table and the top 3 separating features per method."""
    import pandas as pd

    table = pd.read_csv(work / "realism.csv")
    feats = pd.read_csv(work / "realism.features.csv")
    cases = pd.read_csv(work / "realism.cases.csv")
    print(f"\n### Realism {label} (synthesis {t_synth:.0f} s, evaluation {t_eval:.0f} s)\n")
    print(
        "| method | discriminator | AUC [95% CI] | perm. p | within-fold AUC | n real / synth "
        "| FRD |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in table.itertuples():
        p = "-" if pd.isna(r.p_value) else f"{r.p_value:.3f}"
        print(
            f"| {r.method} | {r.discriminator} | {r.auc:.2f} [{r.auc_ci_low:.2f}, "
            f"{r.auc_ci_high:.2f}] | {p} | {r.auc_within_fold:.2f} | {r.n_real} / "
            f"{r.n_synthetic} | {r.frd:.2f} |"
        )
    print("\n| method | top separating features (univariate AUC, higher in) |\n|---|---|")
    for m, part in feats.groupby("method"):
        top = "; ".join(
            f"{r.region} {r.feature.removeprefix('original_')} {r.auc:.2f} ({r.higher_in})"
            for r in part.head(3).itertuples()
        )
        print(f"| {m} | {top} |")
    syn = cases[cases.arm == "synthetic"].groupby("method")["diameter_mm"]
    print(
        "\nsynthetic lesions per method (count, median diameter mm):",
        "; ".join(f"{m} {len(g)}, {g.median():.1f}" for m, g in syn),
    )
    real = cases[cases.arm == "real"]["diameter_mm"]
    print(f"real lesions: {len(real)}, median diameter {real.median():.1f} mm")


if __name__ == "__main__":
    sys.exit(main())

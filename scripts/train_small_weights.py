"""Train the shipped demo weights (``synth_backend/weights/``): autoencoder, DiffTumor (liver,
early and late stage) and TumorGen (liver), ``small`` presets, on a 2-core CPU.

Training data, all redistributable as weights (never the IRCAD files, whose license forbids
derivatives; they and TotalSegmentator's contrast slab ``example_ct_dicom`` are held out for
the usability figures in benchmarks/RESULTS.md):

- TotalSegmentator ``example_ct`` (Apache-2.0) with its liver label (5) of
  ``example_seg_fast_force_split`` (a TotalSegmentator prediction);
- TCIA HCC-TACE-Seg HCC_048 (CC BY 4.0) with the semi-automatic liver mask of
  ``scripts/hcc048_masks.py`` (``synth_backend/weights/data/hcc048/liver.nii.gz``);
- ``N_PHANTOMS`` healthy phantom livers of ``synth_backend.phantom`` (seed 0).

None has a tumor mask, so DiffTumor and TumorGen learn from the label-free pseudo tumors
(``tumor_source: auto`` -> ellipsoids with the hand-crafted look, see docs/synthesis-generative.md).

Usage: ``python scripts/train_small_weights.py --work DIR [--data-root shared/data]``.
Resumable: re-run the same command after an interruption (each model resumes from
``DIR/<model>/last.pt``; finished models are skipped). At the end the three ``final.pt`` are
copied into ``synth_backend/weights/`` (see its README).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "synth_backend" / "weights"
N_PHANTOMS = 6
SHIPPED = {
    "autoencoder": "autoencoder_small.pt",
    "difftumor": "difftumor_liver_early_small.pt",
    "tumorgen": "tumorgen_liver_small.pt",
    "difftumor_late": "difftumor_liver_late_small.pt",
}
# the late DiffTumor model: medium/large pseudo tumors (capped to the 32 mm patch), T = 200
LATE = ["stage=late", "num_train_timesteps=200", "train.steps=3000"]


def build_data(data_root: Path, work: Path) -> Path:
    """Write the training manifest (derived masks under ``work/data``); returns its path."""
    import nibabel as nib

    from synth_backend.phantom import generate_cohort

    out = work / "data"
    out.mkdir(parents=True, exist_ok=True)
    ts = data_root / "totalseg_example"
    seg = nib.load(ts / "example_seg_fast_force_split.nii.gz")
    liver = (np.asarray(seg.dataobj) == 5).astype(np.uint8)
    ts_liver = out / "totalseg_example_liver.nii.gz"
    nib.save(nib.Nifti1Image(liver, seg.affine), ts_liver)
    cohort = generate_cohort(
        out / "phantom", n=N_PHANTOMS, seed=0, lesion_fraction=0.0, progress=False
    )
    rows = [
        (ts / "example_ct.nii.gz", ts_liver),
        (
            data_root / "hcc_tace_seg_048" / "ct.nii.gz",
            WEIGHTS / "data" / "hcc048" / "liver.nii.gz",
        ),
    ]
    rows += [
        (c / "ct.nii.gz", c / "segmentations" / "liver.nii.gz")
        for c in sorted(cohort.glob("phantom_*"))
    ]
    manifest = out / "manifest.csv"
    manifest.write_text("".join(f"{ct.resolve()},{m.resolve()}\n" for ct, m in rows))
    return manifest


def record_latent_range(final: Path, cases, cfg) -> None:
    """(Re)measure the x0-clamp range with the current ``latent_stats`` and store it in
    ``final``: runs started before the organ-quantile range was introduced recorded min/max."""
    import torch

    from synth_backend.autoencoder.model import autoencoder_from_payload
    from synth_backend.difftumor.train import latent_stats
    from synth_backend.training.checkpoint import save_checkpoint
    from synth_backend.training.data import CACHE_DIR, PatchSampler

    payload = torch.load(final, map_location="cpu", weights_only=False)
    ae = autoencoder_from_payload(payload["autoencoder"])
    ae_cfg = payload["autoencoder"]["config"]
    sampler = PatchSampler(
        cases,
        ae_cfg["patch_size"],
        mode="tumor",
        tumor_source=cfg["tumor_source"],
        stage=cfg.get("stage"),
        sizes=cfg.get("sizes"),
        cache_dir=final.parent / CACHE_DIR,
    )
    scale, latent_range = latent_stats(ae, sampler, ae_cfg["hu_window"], "cpu", int(cfg["seed"]))
    if abs(scale - payload["scale_factor"]) > 1e-6 * scale:
        raise SystemExit(f"{final}: latent scale changed ({payload['scale_factor']} -> {scale})")
    payload.pop("format_version", None)
    payload["latent_range"] = list(latent_range)
    save_checkpoint(payload, final)
    print(f"{final}: latent_range {latent_range}")


def ship(final: Path, target: Path) -> None:
    """Copy a finished checkpoint into the package with its network weights in float16: half
    the size (under 5 MB each, so the repository stays small) and no visible change, since the
    loader copies them into the float32 network (max relative rounding 2**-11). The embedded
    autoencoder stays float32: it must equal the shipped autoencoder file it names by sha256."""
    import torch

    from synth_backend.training.checkpoint import save_checkpoint

    payload = torch.load(final, map_location="cpu", weights_only=False)
    payload.pop("format_version", None)
    payload["state_dict"] = {
        k: v.half() if torch.is_floating_point(v) else v for k, v in payload["state_dict"].items()
    }
    save_checkpoint(payload, target)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="training folders and derived data")
    ap.add_argument("--data-root", type=Path, default=REPO.parents[0] / "shared" / "data")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=list(SHIPPED), help="train one model only")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="MODEL:KEY=VALUE",
        help="e.g. autoencoder:train.steps=800",
    )
    args = ap.parse_args()
    import torch

    from synth_backend.autoencoder.train import train_autoencoder
    from synth_backend.difftumor.train import train_difftumor
    from synth_backend.training.config import build_config
    from synth_backend.training.data import read_manifest
    from synth_backend.training.loop import TrainingInterrupted
    from synth_backend.tumorgen.train import train_tumorgen

    torch.set_num_threads(args.threads)
    cases = read_manifest(build_data(args.data_root, args.work))
    ae_final = args.work / "autoencoder" / "final.pt"
    for model in SHIPPED:
        if args.only and model != args.only:
            continue
        out = args.work / model
        sets = [o.split(":", 1)[1] for o in args.overrides if o.startswith(model + ":")]
        method = "difftumor" if model == "difftumor_late" else model
        cfg = build_config(
            method, "small", overrides=(LATE if model == "difftumor_late" else []) + sets
        )
        t0 = time.perf_counter()
        try:
            if (out / "final.pt").is_file():
                print(f"{model}: done ({out / 'final.pt'})")
            elif model == "autoencoder":
                train_autoencoder(cases, cfg, out, progress=True)
            elif method == "difftumor":
                train_difftumor(cases, cfg, ae_final, out, progress=True)
            else:
                train_tumorgen(cases, cfg, ae_final, out, progress=True)
        except TrainingInterrupted as stop:
            raise SystemExit(f"{model}: {stop}") from None
        print(f"{model}: {time.perf_counter() - t0:.0f} s", flush=True)
        if method != "autoencoder":
            record_latent_range(out / "final.pt", cases, cfg)
        if method == "autoencoder":
            shutil.copyfile(out / "final.pt", WEIGHTS / SHIPPED[model])
        else:
            ship(out / "final.pt", WEIGHTS / SHIPPED[model])
        shutil.copyfile(out / "loss.csv", WEIGHTS / f"{Path(SHIPPED[model]).stem}.loss.csv")


if __name__ == "__main__":
    main()

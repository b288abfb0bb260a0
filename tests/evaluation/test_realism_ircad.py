"""Machine Turing test on the real IRCAD files: the 9 real liver tumors with manual masks vs
4 hand-crafted tumors put into tumor-free liver (IRCAD patients 7 and 1), radiomics only.

Derived volumes (the tumor-free liver mask, the synthetic CTs) live in tmp_path only (the IRCAD
license forbids shipping modified copies).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("radiomics", reason="pyradiomics is not installed")

from evaluation import realism
from evaluation.realism_sources import synthetic_sources

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

REAL = {
    "ircadb01_patient17": ["mask_livertumor1", "mask_livertumor2"],
    "ircadb01_patient01": [f"mask_livertumor0{i}" for i in range(1, 8)],
}


def _real_sources(data):
    from synth_backend.io import sha256_file

    out = []
    for patient, masks in REAL.items():
        ct = data / patient / "ct.nii.gz"
        sha = sha256_file(ct)
        out += [
            realism.TumorSource(
                ct, (data / patient / f"{m}.nii.gz",), "real", "", "liver", sha, f"{patient}/{m}"
            )
            for m in masks
        ]
    return out


def _tumor_free_liver(data, patient, tmp_path):
    from scipy import ndimage

    from synth_backend.io import load_volume, save_like

    ct = load_volume(data / patient / "ct.nii.gz", "ct")
    liver = load_volume(data / patient / "mask_liver.nii.gz", "mask").array > 0
    lesions = np.zeros_like(liver)
    for m in REAL.get(patient, []) + (["mask_liverkyst"] if patient.endswith("01") else []):
        lesions |= load_volume(data / patient / f"{m}.nii.gz", "mask").array > 0
    if lesions.any():
        liver &= ndimage.distance_transform_edt(~lesions, sampling=ct.spacing) > 10.0
    path = tmp_path / f"{patient}_liver.nii.gz"
    save_like(ct, liver.astype(np.uint8), path, "mask")
    return path


def test_machine_turing_test_on_ircad_liver(shared_data, tmp_path):
    from synth_backend.runner import synthesize_file

    out = tmp_path / "handcrafted"
    for k, patient in enumerate(["ircadb01_patient07", "ircadb01_patient01"] * 2):
        synthesize_file(
            "handcrafted",
            shared_data / patient / "ct.nii.gz",
            _tumor_free_liver(shared_data, patient, tmp_path),
            organ="liver",
            out_dir=out / f"{k}",
            seed=k,
            device="cpu",
            diameter_mm=20.0 + 5 * k,
        )
    sources = _real_sources(shared_data) + synthetic_sources(str(out), "liver")[0]
    cases = realism.make_cases(sources)  # a study's default presentation: 1 mm, 96x96x64 mm
    real = [c for c in cases if c.arm == "real"]
    assert len(real) == 9 and sum(c.arm == "synthetic" for c in cases) >= 4
    assert all(c.ct.shape == (96, 96, 64) and c.ct.dtype == np.int16 for c in cases)
    # the crop keeps the tumors' HU (README: patient 17 tumor 1 about 88 HU, patient 1
    # tumor 01 about 76 HU) and volume (85.6 mL, 84.4 mL)
    by_name = {c.case: c for c in real}
    for name, hu, ml in (
        ("ircadb01_patient17/mask_livertumor1", 88, 85.6),
        ("ircadb01_patient01/mask_livertumor01", 76, 84.4),
    ):
        c = by_name[name]
        assert c.ct[c.tumor > 0].mean() == pytest.approx(hu, abs=8)
        assert c.volume_ml == pytest.approx(ml, rel=0.02)
    # one group per patient scan: real and synthetic tumors of patient 1 share theirs
    assert len({c.volume for c in cases}) == 3
    feats = realism.case_features(cases, (1.0, 1.0, 1.0))
    result = realism.run_realism(
        cases,
        feats,
        organ="liver",
        spacing=(1.0, 1.0, 1.0),
        discriminators=("radiomics-logreg",),
        n_boot=200,
        n_perm=0,
    )
    row = result.table.iloc[0]
    assert row.n_real == 9 and row.n_volumes == 3 and 0.0 <= row.auc <= 1.0
    assert row.auc_ci_low <= row.auc <= row.auc_ci_high and np.isfinite(row.frd)
    assert len(result.features) == realism.TOP_FEATURES

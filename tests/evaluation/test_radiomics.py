"""Radiomics features equal a direct pyradiomics call; t-SNE and SVM behave as documented."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("radiomics", reason="pyradiomics is not installed")

from evaluation.radiomics import (
    FEATURE_CLASSES,
    extract_cases,
    extractor_settings,
    feature_matrix,
    make_extractor,
    read_cases,
    summarize_svm,
    svm_organ_origin,
    tsne_embedding,
)


def _tumor_case(tmp_path, name: str, seed: int, radius=(5.0, 4.0, 3.0)):
    """A 40x36x16 CT (LPS on disk, 0.8 x 0.8 x 2 mm) with a textured ellipsoidal tumor."""
    rng = np.random.default_rng(seed)
    shape, spacing = (40, 36, 16), (0.8, 0.8, 2.0)
    grid = np.meshgrid(
        *[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"
    )
    center = [n * s / 2 for n, s in zip(shape, spacing, strict=True)]
    r2 = sum(
        ((g - c) / (r * s_)) ** 2
        for g, c, r, s_ in zip(grid, center, radius, (2.0, 2.0, 2.0), strict=True)
    )
    tumor = r2 <= 1.0
    ct = 60.0 + rng.normal(0, 15, shape)
    ct[tumor] = 20.0 + rng.normal(0, 25, int(tumor.sum()))
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])  # LPS storage
    affine[:3, 3] = (10.0, 20.0, -30.0)
    ct_path, mask_path = tmp_path / f"{name}_ct.nii.gz", tmp_path / f"{name}_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.round(ct).astype(np.int16), affine), str(ct_path))
    nib.save(nib.Nifti1Image(tumor.astype(np.uint8), affine), str(mask_path))
    return ct_path, mask_path


def test_features_equal_direct_pyradiomics_call(tmp_path):
    ct_path, mask_path = _tumor_case(tmp_path, "t1", seed=0)
    cases = tmp_path / "cases.csv"
    pd.DataFrame({"ct": [ct_path.name], "mask": [mask_path.name], "organ": ["Liver"]}).to_csv(
        cases, index=False
    )
    ours = extract_cases(read_cases(cases))
    assert ours.organ[0] == "liver"
    spec = extractor_settings()
    direct = make_extractor(spec).execute(str(ct_path), str(mask_path))
    direct = {k: float(v) for k, v in direct.items() if not k.startswith("diagnostics_")}
    feats = feature_matrix(ours).iloc[0].to_dict()
    assert set(feats) == set(direct)
    assert len(feats) > 90
    assert {k.split("_")[1] for k in feats} == set(FEATURE_CLASSES)
    for key, value in direct.items():
        assert feats[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def _organ_features(seed: int, separable: bool, n_per: int = 15):
    rng = np.random.default_rng(seed)
    organs = np.repeat(["liver", "pancreas", "kidney"], n_per)
    x = rng.normal(size=(organs.size, 6))
    if separable:  # organ-specific offsets on every feature
        x += np.repeat([[0.0] * 6, [4.0, -4.0] * 3, [-4.0] * 6], n_per, axis=0)
    return x, organs


def test_svm_separable_vs_random_features():
    x, organs = _organ_features(0, separable=True)
    sep = summarize_svm(svm_organ_origin(x, organs, seed=0)).set_index("metric")
    assert sep.loc["test_recall", "mean"] > 0.95 and sep.loc["train_precision", "mean"] > 0.95
    x, organs = _organ_features(1, separable=False)
    splits = svm_organ_origin(x, organs, seed=0)
    assert len(splits) == 10
    rnd = summarize_svm(splits).set_index("metric")
    # no signal: test recall near chance (1/3), train recall well above it (memorization)
    assert abs(rnd.loc["test_recall", "mean"] - 1 / 3) < 0.15
    assert rnd.loc["train_recall", "mean"] > rnd.loc["test_recall", "mean"] + 0.2
    pd.testing.assert_frame_equal(splits, svm_organ_origin(x, organs, seed=0))


def test_tsne_is_seeded_and_separates_clusters():
    x, organs = _organ_features(0, separable=True, n_per=8)
    emb = tsne_embedding(x, seed=4)
    assert emb.shape == (24, 2)
    np.testing.assert_allclose(emb, tsne_embedding(x, seed=4))
    centroids = np.array([emb[organs == o].mean(0) for o in ("liver", "pancreas", "kidney")])
    spread = np.mean([emb[organs == o].std(0).mean() for o in ("liver", "pancreas", "kidney")])
    gaps = [np.linalg.norm(centroids[i] - centroids[j]) for i, j in ((0, 1), (1, 2), (0, 2))]
    assert min(gaps) > 2 * spread


@pytest.mark.realdata
@pytest.mark.slow
def test_real_liver_tumor_features_equal_direct_call(shared_data, tmp_path):
    """IRCAD patient 17, tumor 2 (manual mask, 0/255 labels, LPS file): ~78.6 mL."""
    d = shared_data / "ircadb01_patient17"
    cases = tmp_path / "cases.csv"
    pd.DataFrame(
        {
            "ct": [str(d / "ct.nii.gz")],
            "mask": [str(d / "mask_livertumor2.nii.gz")],
            "organ": ["liver"],
        }
    ).to_csv(cases, index=False)
    ours = feature_matrix(extract_cases(read_cases(cases))).iloc[0]
    direct = make_extractor(extractor_settings()).execute(
        str(d / "ct.nii.gz"), str(d / "mask_livertumor2.nii.gz"), label=255
    )
    direct = {k: float(v) for k, v in direct.items() if not k.startswith("diagnostics_")}
    assert set(ours.index) == set(direct)
    for key, value in direct.items():
        assert ours[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    # 1 mm isotropic voxels: the voxel volume in mm^3 approximates the README's 78.6 mL
    assert ours["original_shape_VoxelVolume"] / 1000 == pytest.approx(78.6, rel=0.03)

"""Frechet distance against the reference formula and MONAI; 2.5D protocol properties."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.extractors import DEFAULT_EXTRACTOR, get_extractor
from evaluation.fid import (
    fid_2p5d,
    fid_from_features,
    frechet_distance,
    plane_slices,
    window,
)
from evaluation.tables import EvaluationInputError


def test_frechet_distance_diagonal_by_hand():
    # ||(1, 2)||^2 = 5; Tr: (1 + 4 - 2*sqrt(4)) + (4 + 9 - 2*sqrt(36)) = 1 + 1 -> 7
    d = frechet_distance([0, 0], np.diag([1.0, 4.0]), [1, 2], np.diag([4.0, 9.0]))
    assert d == pytest.approx(7.0)
    assert frechet_distance([0, 0], np.eye(2), [0, 0], np.eye(2)) == pytest.approx(0.0, abs=1e-12)


def test_frechet_distance_matches_eigenvalue_reference_and_monai():
    import torch
    from monai.metrics import FIDMetric

    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    b = rng.normal(0.3, 1.5, size=(500, 6)) @ rng.normal(size=(6, 6))
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # S1 S2 is similar to S1^(1/2) S2 S1^(1/2) (SPD), so Tr sqrtm = sum of sqrt eigenvalues
    ref = (
        np.sum((mu1 - mu2) ** 2)
        + np.trace(s1)
        + np.trace(s2)
        - 2 * np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).real))
    )
    ours = fid_from_features(a, b)
    assert ours == pytest.approx(ref, rel=1e-9)
    assert ours == pytest.approx(fid_from_features(b, a), rel=1e-9)
    monai = float(FIDMetric()(torch.from_numpy(b), torch.from_numpy(a)))
    assert ours == pytest.approx(monai, rel=1e-6)


def test_singular_covariances_fall_back_to_epsilon():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 20)), rng.normal(size=(5, 20))  # N < F: rank-deficient
    value = fid_from_features(a, b)
    assert np.isfinite(value) and value > 0


def test_imaginary_part_check_is_relative_to_the_feature_scale():
    """Features of scale 1e3 (40 samples, 64 features): sqrtm's round-off imaginary part is
    ~0.4 on a real diagonal ~1e6, which an absolute 1e-3 check rejected. FID scales with the
    square of the features, so the value is 1e6 times that of the unit-scale features."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(40, 64)), rng.normal(size=(40, 64))
    big = fid_from_features(a * 1e3, b * 1e3)
    assert np.isfinite(big) and big == pytest.approx(1e6 * fid_from_features(a, b), rel=1e-3)
    with pytest.raises(ValueError, match="large imaginary part"):  # not round-off
        frechet_distance([0, 0], np.eye(2), [0, 0], np.diag([-1.0, 1.0]))


def test_fid_is_never_negative():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(30, 8)) * 1e2
    values = [fid_from_features(a, a + 1e-9 * rng.normal(size=a.shape)) for _ in range(5)]
    assert all(v >= 0.0 for v in values) and max(values) < 1e-6


def test_conventions_name_input_size_and_normalization():
    from evaluation.fid import conventions

    conv = conventions(get_extractor(DEFAULT_EXTRACTOR, device="cpu"), 32, None)
    assert "128 x 128 px" in conv["input"] and "normaliz" in conv["input"]
    assert "clipped at 0" in conv["clipping"]


def test_window_and_slice_selection():
    np.testing.assert_allclose(
        window(np.array([-1000.0, -175.0, 37.5, 250.0, 900.0])), [0, 0, 0.5, 1, 1]
    )
    ct = np.full((10, 12, 14), -1000.0, dtype=np.float32)
    ct[2:8, 3:9, 4:10] = 40.0  # body occupies z 4..9, y 3..8, x 2..7
    assert plane_slices(ct, "axial").shape == (6, 10, 12)
    assert plane_slices(ct, "coronal").shape == (6, 10, 14)
    assert plane_slices(ct, "sagittal", max_slices=3).shape == (3, 12, 14)


def _phantoms(seed: int, n: int, noise: float, shift: float = 0.0):
    rng = np.random.default_rng(seed)
    vols = []
    for _ in range(n):
        ct = np.full((40, 40, 24), -1000.0, dtype=np.float32)
        ct[6:34, 6:34, 2:22] = 50.0 + shift
        ct += rng.normal(0, noise, ct.shape).astype(np.float32)
        vols.append(ct)
    return vols


def test_fid_2p5d_orders_differences_and_names_extractor():
    ext = get_extractor(DEFAULT_EXTRACTOR, device="cpu")
    same = fid_2p5d(_phantoms(0, 2, 20), _phantoms(1, 2, 20), ext, max_slices=8)
    far = fid_2p5d(_phantoms(0, 2, 20), _phantoms(1, 2, 60, shift=60), ext, max_slices=8)
    assert same.plane.tolist() == ["axial", "coronal", "sagittal", "average"]
    assert set(same.extractor) == {DEFAULT_EXTRACTOR}
    assert same.fid.iloc[3] == pytest.approx(same.fid.iloc[:3].mean())
    assert (far.fid.to_numpy() > 10 * same.fid.to_numpy()).all()
    assert same.n_real_slices.iloc[0] == 2 * 8


def test_default_extractor_is_deterministic_across_instances():
    x = np.random.default_rng(2).random((3, 50, 60)).astype(np.float32)
    f1 = get_extractor(device="cpu")(x)
    f2 = get_extractor(device="cpu")(x)
    assert f1.shape == (3, 128) and f1.dtype == np.float64
    np.testing.assert_array_equal(f1, f2)


def test_torchscript_extractor_from_local_file(tmp_path):
    import torch

    class Pool(torch.nn.Module):
        def forward(self, x):
            return torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)

    path = tmp_path / "pool.pt"
    torch.jit.save(torch.jit.script(Pool()), str(path))
    ext = get_extractor(weights=path, device="cpu", input_size=32, imagenet_norm=False)
    assert ext.name.startswith("torchscript:pool.pt:")
    feats = ext(np.full((2, 16, 16), 0.25, dtype=np.float32))
    np.testing.assert_allclose(feats, 0.25)
    assert feats.shape == (2, 6)  # 3 channels x (mean, max)
    with pytest.raises(EvaluationInputError, match="unknown feature extractor"):
        get_extractor("inception")
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(EvaluationInputError, match="not a TorchScript module"):
        get_extractor(weights=tmp_path / "junk.pt", device="cpu")

"""Hand-crafted synthesis (Hu et al.): geometry, locality, attenuation, size, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from synth_backend.handcrafted.params import HandcraftedParams, sample_params
from synth_backend.handcrafted.synthesizer import HandcraftedSynthesizer, apply
from synth_backend.handcrafted.texture import gaussian_blur_fft, tumor_texture
from synth_backend.provenance import tumor_statistics
from synth_backend.runner import OrganTooSmallError

SPACING = (1.5, 1.5, 2.0)


def organ_phantom(shape=(64, 64, 40), spacing=SPACING, seed=0):
    """Ellipsoid organ of ~100 HU (noise sd 10) in -100 HU fat, with a 200 HU vessel tube."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape, dtype=np.float32)
    c = (np.array(shape) - 1) / 2
    radii = np.array([42.0, 40.0, 34.0])
    dist = sum(((g - ci) * s / r) ** 2 for g, ci, s, r in zip(grid, c, spacing, radii, strict=True))
    organ = dist <= 1.0
    ct = np.where(organ, 100.0, -100.0).astype(np.float32) + rng.normal(0, 10, shape).astype(np.float32)
    tube = ((grid[0] - c[0] - 10) * spacing[0]) ** 2 + ((grid[1] - c[1]) * spacing[1]) ** 2 <= 9.0
    ct[tube & organ] = 200.0
    return ct, organ


@pytest.fixture(scope="module")
def phantom():
    return organ_phantom()


def test_output_geometry_mask_inside_organ_and_locality(phantom):
    ct, organ = phantom
    res = HandcraftedSynthesizer().synthesize(ct, organ, organ="liver", spacing=SPACING,
                                              seed=1, size="small")
    assert res.ct.shape == ct.shape and res.ct.dtype == np.float32
    assert res.tumor_mask.dtype == np.uint8 and set(np.unique(res.tumor_mask)) <= {0, 1}
    assert res.tumor_mask.any()
    assert not (res.tumor_mask.astype(bool) & ~organ).any()
    changed = res.ct != ct
    # blur margin: 3 sigma of at most 2 mm -> 6 mm = 4 voxels at 1.5 mm
    margin = ndimage.binary_dilation(res.tumor_mask.astype(bool), np.ones((3, 3, 3)), iterations=4)
    assert changed.any() and not (changed & ~(margin & organ)).any()


def test_hypo_attenuation_within_spec_range(phantom):
    ct, organ = phantom
    for seed in range(3):
        res = HandcraftedSynthesizer().synthesize(ct, organ, organ="liver", spacing=SPACING,
                                                  seed=seed, diameter_mm=20.0)
        stats = tumor_statistics(res.ct, res.tumor_mask, organ, SPACING)
        # drop = texture (mean ~0.5) x U(65, 145) -> about 30-80 HU below the ring
        assert -110.0 < stats["hu_contrast"] < -15.0, stats


@pytest.mark.parametrize("diameter", [8.0, 16.0, 30.0])
def test_explicit_diameter_is_respected(phantom, diameter):
    ct, organ = phantom
    diams = []
    for seed in range(3):
        res = HandcraftedSynthesizer().synthesize(ct, organ, organ="liver", spacing=SPACING,
                                                  seed=seed, diameter_mm=diameter)
        diams.append(tumor_statistics(res.ct, res.tumor_mask, organ, SPACING)
                     ["largest_diameter_mm"])
    # elastic warp and voxelization; clipping by the organ only shrinks
    assert 0.6 * diameter < np.median(diams) < 1.25 * diameter, diams


def test_size_classes_counts_and_radii():
    organ = np.ones((80, 80, 60), dtype=bool)
    rng = np.random.default_rng(0)
    for size, (lo, hi), r in [("tiny", (3, 10), 4), ("small", (3, 10), 8), ("medium", (2, 5), 16)]:
        p = sample_params(rng, organ, (1.0, 1.0, 1.0), organ="liver", size=size)
        assert lo <= len(p.tumors) <= hi
        radii = np.array([t.radii_mm for t in p.tumors])
        assert radii.min() >= 0.75 * r and radii.max() <= 1.25 * r
        assert 65 <= p.hu_drop <= 145 and 1 <= p.blur_sigma_mm <= 2


def test_centres_on_central_z_band():
    organ = np.zeros((40, 40, 100), dtype=bool)
    organ[5:35, 5:35, 10:90] = True
    p = sample_params(np.random.default_rng(3), organ, (1.0, 1.0, 1.0), organ="liver",
                      size="tiny")
    zs = [t.center[2] for t in p.tumors]
    assert min(zs) >= 10 + 0.3 * 79 - 1 and max(zs) <= 10 + 0.7 * 79 + 1


def test_determinism_and_replay(phantom):
    ct, organ = phantom
    synth = HandcraftedSynthesizer()
    a = synth.synthesize(ct, organ, organ="liver", spacing=SPACING, seed=5, size="tiny")
    b = synth.synthesize(ct, organ, organ="liver", spacing=SPACING, seed=5, size="tiny")
    c = synth.synthesize(ct, organ, organ="liver", spacing=SPACING, seed=6, size="tiny")
    assert np.array_equal(a.ct, b.ct) and np.array_equal(a.tumor_mask, b.tumor_mask)
    assert not np.array_equal(a.tumor_mask, c.tumor_mask)
    replay = synth.replay(ct, organ, spacing=SPACING, params=a.params)
    assert np.array_equal(replay.ct, a.ct)
    assert HandcraftedParams.from_dict(a.params).to_dict() == a.params


def test_organ_too_small_for_large_tumor(phantom):
    ct, organ = phantom
    organ = organ.copy()
    organ[:, :, :15] = organ[:, :, 25:] = False  # a 20 mm thick slab: no 48 mm tumor fits
    with pytest.raises(OrganTooSmallError, match="smaller than the requested tumor"):
        HandcraftedSynthesizer().synthesize(ct, organ, organ="liver", spacing=SPACING,
                                            seed=0, size="large")


def test_texture_statistics_and_determinism():
    tex = tumor_texture((40, 40, 20), (1.0, 1.0, 2.0), sigma_a_mm=6.0, sigma_b_mm=4.0, seed=2)
    assert tex.dtype == np.float32 and tex.min() >= 0 and tex.max() <= 1
    assert 0.45 <= tex[tex > 0.12].mean() <= 0.6
    again = tumor_texture((40, 40, 20), (1.0, 1.0, 2.0), sigma_a_mm=6.0, sigma_b_mm=4.0, seed=2)
    assert np.array_equal(tex, again)


def test_fft_blur_matches_periodic_gaussian():
    x = np.random.default_rng(0).random((32, 32, 16)).astype(np.float32)
    got = gaussian_blur_fft(x, (2.0, 2.0, 1.5))
    ref = ndimage.gaussian_filter(x, (2.0, 2.0, 1.5), mode="wrap", truncate=6.0)
    assert np.allclose(got, ref, atol=2e-3)
    assert np.isclose(got.mean(), x.mean(), atol=1e-5)


def test_optional_extras_change_the_result(phantom):
    ct, organ = phantom
    base = sample_params(np.random.default_rng(0), organ, SPACING, organ="liver",
                         diameter_mm=20.0)
    plain, mask = apply(ct, organ, SPACING, base)
    caps = HandcraftedParams.from_dict({**base.to_dict(), "capsule_hu": 40.0})
    capsule, _ = apply(ct, organ, SPACING, caps)
    rim = mask.astype(bool) & ~ndimage.binary_erosion(mask.astype(bool))
    assert capsule[rim].mean() > plain[rim].mean() + 5
    pushed, _ = apply(ct, organ, SPACING,
                      HandcraftedParams.from_dict({**base.to_dict(), "mass_effect": 0.4}))
    outside = ~ndimage.binary_dilation(mask.astype(bool), iterations=5)
    assert (pushed[outside] != ct[outside]).any()  # tissue around the tumor moved


def test_vessel_avoidance_keeps_tumors_off_the_vessel(phantom):
    ct, organ = phantom
    vessel = (ct >= 180) & organ
    hits = []
    for seed in range(4):
        p = sample_params(np.random.default_rng(seed), organ, SPACING, organ="liver",
                          diameter_mm=10.0, ct=ct, vessel_avoidance=True)
        _, mask = apply(ct, organ, SPACING, p)
        hits.append((mask.astype(bool) & vessel).sum() / max(1, mask.sum()))
    assert max(hits) < 0.05, hits

"""Tests of the built-in phantom cohort (synth_backend.phantom), on the small preset."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from synth_backend.io import load_volume
from synth_backend.phantom import (
    STRUCTURES,
    CohortError,
    PhantomConfig,
    case_seed,
    generate_case,
    generate_cohort,
    lesion_plan,
    measure_hu,
)
from synth_backend.phantom.canvas import coverage
from synth_backend.phantom.intensities import TISSUES, tissue_ids
from synth_backend.phantom.noise import ct_noise

SMALL = PhantomConfig.small()


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    """Two small cases, both with a lesion (case 0 liver, case 1 pancreas)."""
    out = tmp_path_factory.mktemp("phantom")
    generate_cohort(out, n=2, seed=7, config=SMALL, lesion_fraction=1.0, progress=False)
    return out


@pytest.fixture(scope="module")
def case0():
    return generate_case(11, SMALL)


def _centroid_mm(case, name):
    idx = np.argwhere(case.labels[name])
    return nib.affines.apply_affine(case.affine, idx.mean(axis=0))


# --- configuration and plans -------------------------------------------------------------------


def test_config_rejects_too_small_field_of_view():
    with pytest.raises(ValueError, match="field of view"):
        PhantomConfig(shape=(64, 64, 32), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="preset"):
        PhantomConfig.preset("huge")


def test_lesion_plan_is_even_round_robin_and_independent_of_n():
    assert [lesion_plan(i, 0.5) for i in range(6)] == [
        None,
        "liver",
        None,
        "pancreas",
        None,
        "kidney",
    ]
    assert [lesion_plan(i, 1.0) for i in range(4)] == ["liver", "pancreas", "kidney", "liver"]
    assert all(lesion_plan(i, 0.0) is None for i in range(10))
    # fraction 0.3 of 10 cases gives exactly 3 lesions
    assert sum(lesion_plan(i, 0.3) is not None for i in range(10)) == 3
    with pytest.raises(ValueError):
        lesion_plan(0, 1.5)


# --- rendering primitives ----------------------------------------------------------------------


def test_coverage_of_a_plane_is_the_exact_voxel_fraction():
    # plane x = 0.3 mm on a 1 mm grid: the voxel centred at 0 spans [-0.5, 0.5], 0.8 of it inside
    x = np.arange(-3, 4, dtype=np.float32)[:, None, None]
    field = np.broadcast_to(x - 0.3, (7, 3, 3)).astype(np.float32)
    frac = coverage(field)
    np.testing.assert_allclose(frac[:, 1, 1], [1, 1, 1, 0.8, 0, 0, 0], atol=1e-6)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (1.0, 1.0, 2.5)])
def test_coverage_preserves_sphere_volume(spacing):
    from synth_backend.phantom.shapes import ellipsoid

    axes = [np.arange(-16, 16.01, s, dtype=np.float32) for s in spacing]
    X, Y, Z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    field = ellipsoid(X, Y, Z, (0.3, -0.2, 0.1), (10, 10, 10))
    volume = coverage(field).sum() * np.prod(spacing)
    # the planar ramp ignores curvature: expected bias ~ w^2 / (4 r^2), w ~ 1.5-3 mm here
    assert volume == pytest.approx(4 / 3 * np.pi * 1000, rel=0.02)


def test_ct_noise_has_requested_std_and_a_ct_like_spectrum():
    rng = np.random.default_rng(0)
    noise = ct_noise(rng, (96, 96, 8), (1.0, 1.0, 2.0), std_hu=12.0, peak_mm=4.0, z_mm=0.0)
    assert noise.std() == pytest.approx(12.0, rel=1e-3)
    power = (np.abs(np.fft.fft2(noise, axes=(0, 1))) ** 2).mean(axis=2)
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(96), np.fft.fftfreq(96), indexing="ij"))
    bands = np.linspace(0, 0.5, 11)
    radial = [power[(f >= lo) & (f < hi)].mean() for lo, hi in zip(bands, bands[1:], strict=False)]
    # ramp x Gaussian: little power near DC, peak near 1 / 4 mm = 0.25 cycles/mm
    assert 0.2 <= bands[int(np.argmax(radial))] <= 0.3
    assert radial[0] < 0.5 * max(radial)


# --- one case in memory ------------------------------------------------------------------------


def test_case_is_reproducible_and_seeds_differ(case0):
    again = generate_case(11, SMALL)
    np.testing.assert_array_equal(case0.ct, again.ct)
    assert case0.anatomy == again.anatomy
    other = generate_case(12, SMALL)
    assert not np.array_equal(case0.labels["liver"], other.labels["liver"])
    assert np.abs(case0.ct - other.ct).mean() > 5.0


def test_case_geometry_and_dtypes(case0):
    assert case0.ct.shape == SMALL.shape and case0.ct.dtype == np.float32
    np.testing.assert_allclose(np.abs(np.diag(case0.affine)[:3]), SMALL.spacing)
    assert set(case0.labels) == set(STRUCTURES)
    for mask in case0.labels.values():
        assert mask.dtype == bool and mask.shape == SMALL.shape


@pytest.mark.parametrize("seed", [11, 5])
def test_anatomy_is_plausible(seed, case0):
    case = case0 if seed == 11 else generate_case(seed, SMALL)
    voxel_ml = np.prod(SMALL.spacing) / 1000
    ml = {k: v.sum() * voxel_ml for k, v in case.labels.items()}
    assert 800 < ml["liver"] < 2500
    assert 60 < ml["spleen"] < 500
    assert 70 < ml["kidney_left"] < 300 and 70 < ml["kidney_right"] < 300
    assert 20 < ml["pancreas"] < 150
    assert all(ml[s] > 0 for s in STRUCTURES)
    c = {name: _centroid_mm(case, name) for name in STRUCTURES}
    # RAS+ world: +x is the patient's right (liver, right kidney, IVC)
    assert c["liver"][0] > 0 > c["spleen"][0]
    assert c["kidney_right"][0] > 0 > c["kidney_left"][0]
    assert c["postcava"][0] > c["aorta"][0]
    assert c["vertebrae"][1] < c["aorta"][1] < c["pancreas"][1]  # spine posterior to aorta
    assert c["liver"][2] > c["kidney_right"][2]  # liver above the right kidney
    inner = [case.labels[s] for s in STRUCTURES if s != "body"]
    assert np.sum(inner, axis=0).max() == 1  # organ labels are disjoint
    assert not (np.any(inner, axis=0) & ~case.labels["body"]).any()


def test_hu_matches_table_and_noise_is_realistic(case0):
    hu = measure_hu(case0)["tissues"]
    for tissue in (
        "liver",
        "spleen",
        "pancreas",
        "kidney_cortex",
        "aorta",
        "muscle",
        "subcutaneous_fat",
        "cancellous_bone",
    ):
        assert hu[tissue]["mean"] == pytest.approx(TISSUES[tissue].hu, abs=5.0), tissue
    assert 10.0 <= hu["liver"]["std"] <= 20.0
    assert case0.info["noise_std_hu"] == pytest.approx(hu["air"]["std"], rel=0.1)
    # Pixel2Cancer's vessel rule (>= 160 HU inside the liver) finds the hepatic vessels, and
    # hardly any parenchyma
    ids = tissue_ids()
    liver = case0.labels["liver"]
    vessel_vox = liver & (case0.tissue == ids["hepatic_vessel"])
    parenchyma = liver & (case0.tissue == ids["liver"])
    assert (case0.ct[vessel_vox] >= 160).mean() > 0.3
    assert (case0.ct[parenchyma] >= 160).mean() < 0.01


@pytest.mark.parametrize("organ", ["liver", "pancreas", "kidney"])
def test_lesion_inside_organ_and_visible(organ, case0):
    case = generate_case(11, SMALL, lesion=organ)
    tumor = case.labels[f"{organ}_tumor"]
    (lesion,) = case.lesions
    assert lesion["kind"] == "phantom_lesion" and lesion["organ"] == organ
    host = case.labels[lesion["structure"]]
    assert tumor.sum() == lesion["voxels"] > 10
    assert not (tumor & ~host).any()
    assert 6.0 <= lesion["equivalent_diameter_mm"] <= 35.0
    assert tumor[tuple(lesion["center_voxel"])] or host[tuple(lesion["center_voxel"])]
    # the lesion stream is separate: anatomy and noise away from the lesion are unchanged
    far = ~ndimage.binary_dilation(tumor, iterations=3)
    np.testing.assert_array_equal(case.ct[far], case0.ct[far])
    if organ in ("liver", "pancreas"):
        parenchyma = ndimage.binary_erosion(host & ~ndimage.binary_dilation(tumor, iterations=2))
        assert lesion["mean_hu"] < case.ct[parenchyma].mean() - 20.0
    else:
        assert case.ct[tumor].std() > 20.0  # heterogeneous


# --- the cohort on disk ------------------------------------------------------------------------


def test_cohort_files_geometry_and_manifest(cohort):
    doc = json.loads((cohort / "cohort.json").read_text())
    assert doc["n"] == 2 and doc["seed"] == 7 and doc["spacing"] == list(SMALL.spacing)
    assert doc["generator"] == "turingct.phantom" and doc["version"]
    assert abs(doc["measured_hu"]["liver"]["measured_mean"] - TISSUES["liver"].hu) < 5
    for entry, organ in zip(doc["cases"], ("liver", "pancreas"), strict=True):
        case_dir = cohort / entry["case_id"]
        img = nib.load(case_dir / "ct.nii.gz")
        assert img.get_data_dtype() == np.int16
        assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
        np.testing.assert_allclose(img.header.get_zooms(), SMALL.spacing)
        names = sorted(
            p.name.removesuffix(".nii.gz") for p in (case_dir / "segmentations").iterdir()
        )
        assert names == sorted([*STRUCTURES, f"{organ}_tumor"])
        for name in ("liver", f"{organ}_tumor"):
            seg = nib.load(case_dir / "segmentations" / f"{name}.nii.gz")
            data = np.asanyarray(seg.dataobj)
            assert seg.get_data_dtype() == np.uint8 and set(np.unique(data)) <= {0, 1}
            np.testing.assert_allclose(seg.affine, img.affine)
        (lesion,) = entry["lesions"]
        assert lesion["kind"] == "phantom_lesion" and lesion["organ"] == organ
        ct = load_volume(case_dir / "ct.nii.gz")  # passes the project's CT validation
        assert ct.shape == SMALL.shape


def test_cohort_case_equals_in_memory_case(cohort):
    case = generate_case(case_seed(7, 1), SMALL, lesion="pancreas")
    on_disk = np.asanyarray(nib.load(cohort / "phantom_0001" / "ct.nii.gz").dataobj)
    np.testing.assert_array_equal(on_disk, np.rint(case.ct).astype(np.int16))


def test_resume_skips_complete_cases_and_redoes_broken_ones(tmp_path):
    generate_cohort(tmp_path, n=1, seed=3, config=SMALL, lesion_fraction=0.0, progress=False)
    ct0 = tmp_path / "phantom_0000" / "ct.nii.gz"
    stamp = ct0.stat().st_mtime_ns
    generate_cohort(tmp_path, n=2, seed=3, config=SMALL, lesion_fraction=0.0, progress=False)
    assert ct0.stat().st_mtime_ns == stamp  # skipped
    broken = tmp_path / "phantom_0001" / "segmentations" / "spleen.nii.gz"
    before = broken.read_bytes()
    broken.unlink()
    generate_cohort(tmp_path, n=2, seed=3, config=SMALL, lesion_fraction=0.0, progress=False)
    assert broken.read_bytes() == before and ct0.stat().st_mtime_ns == stamp
    assert len(json.loads((tmp_path / "cohort.json").read_text())["cases"]) == 2
    with pytest.raises(CohortError, match="different settings"):
        generate_cohort(tmp_path, n=2, seed=4, config=SMALL, lesion_fraction=0.0, progress=False)


def test_cli_writes_cohort_and_says_what_next(tmp_path, capsys):
    from turingct.cli import main

    out = tmp_path / "c"
    assert (
        main(
            [
                "phantom",
                "--out",
                str(out),
                "--n",
                "1",
                "--preset",
                "small",
                "--lesion-fraction",
                "0",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert str(out) in printed and "turingct data import --format atlas" in printed
    assert (out / "phantom_0000" / "ct.nii.gz").is_file()
    with pytest.raises(SystemExit):
        main(["phantom", "--out", str(out), "--lesion-fraction", "2"])

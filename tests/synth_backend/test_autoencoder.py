"""Autoencoder, training plumbing (config, data, checkpoints, resume), masks and patch grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synth_backend.autoencoder.model import build_autoencoder, hu_to_unit, unit_to_hu
from synth_backend.autoencoder.patching import PatchGrid, choose_center, paste_difference
from synth_backend.autoencoder.train import autoencoder_step, train_autoencoder
from synth_backend.errors import TuringCTError
from synth_backend.masks import draw_tumor_mask, ellipsoid, sample_tumor_specs
from synth_backend.training.checkpoint import load_checkpoint
from synth_backend.training.config import ConfigError, build_config
from synth_backend.training.data import PatchSampler, find_cases, read_manifest
from tests.synth_backend._generative_data import (
    TEST_PATCH,
    limit_torch_threads,
    make_case,
    write_cases,
)

one_thread = pytest.fixture(autouse=True, scope="module")(limit_torch_threads)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_cases(tmp_path_factory.mktemp("gen_ae_data"), 2)


# -- pure helpers ------------------------------------------------------------------------------
def test_hu_window_maps_to_unit_range_and_back():
    hu = np.array([-1000.0, -175.0, 37.5, 250.0, 1200.0])
    unit = hu_to_unit(hu, (-175, 250))
    np.testing.assert_allclose(unit, [-1.0, -1.0, 0.0, 1.0, 1.0])
    np.testing.assert_allclose(unit_to_hu(unit, (-175, 250)), [-175, -175, 37.5, 250, 250])


def test_config_precedence_and_unknown_keys(tmp_path):
    user = tmp_path / "c.yaml"
    user.write_text("train:\n  lr: 0.5\n  steps: 7\n")
    cfg = build_config("autoencoder", "tiny", user, ["train.steps=9", "model.channels=[8,8,8]"])
    assert cfg["train"]["lr"] == 0.5 and cfg["train"]["steps"] == 9
    assert cfg["model"]["channels"] == [8, 8, 8] and cfg["method"] == "autoencoder"
    with pytest.raises(ConfigError, match="unknown key 'stepz'"):
        build_config("autoencoder", "tiny", overrides=["train.stepz=3"])
    with pytest.raises(ConfigError, match="preset: must be one of"):
        build_config("autoencoder", "huge")
    assert build_config("difftumor", "full")["model"]["channels"] == [128, 256, 512]


def test_ellipsoid_volume_and_specs_respect_stage_and_organ():
    # 4/3 pi abc for radii (10, 6, 8) voxels = 2010.6; the voxelized count is within 3 %
    vol = ellipsoid((40, 40, 40), (20, 20, 20), (10, 6, 8)).sum()
    assert abs(vol - 4 / 3 * np.pi * 480) / (4 / 3 * np.pi * 480) < 0.03
    organ = ellipsoid((48, 48, 48), (24, 24, 24), (18, 18, 18))
    rng = np.random.default_rng(0)
    for _ in range(20):
        early = sample_tumor_specs(rng, organ, stage="early")
        assert 1 <= len(early) <= 3
        assert all(min(s.radii) >= 3.0 and max(s.radii) <= 10.0 for s in early)
        large = sample_tumor_specs(rng, organ, stage="large", max_radius_mm=20)
        assert len(large) == 1 and max(large[0].radii) <= 20
    mask = draw_tumor_mask(organ.shape, early, organ)
    assert mask.any() and not (mask & ~organ).any()
    again = draw_tumor_mask(organ.shape, early, organ)
    np.testing.assert_array_equal(mask, again)  # specs fully determine the mask


def test_patch_grid_round_trip_on_anisotropic_grid():
    spacing = (0.75, 0.75, 1.6)
    x, y, z = np.meshgrid(
        *[np.arange(n) * s for n, s in zip((60, 60, 30), spacing, strict=True)], indexing="ij"
    )
    ramp = (2.0 * x + 3.0 * y - z).astype(np.float32)  # linear in mm: exact under linear interp
    grid = PatchGrid.centred((30, 30, 15), spacing, 16)
    patch = grid.extract(ramp, order=1, fill=0.0)
    # patch voxels are 1 mm apart: the ramp rises 2 / 3 / -1 per voxel along x / y / z
    np.testing.assert_allclose(np.diff(patch, axis=0), 2.0, atol=1e-3)
    np.testing.assert_allclose(np.diff(patch, axis=2), -1.0, atol=1e-3)
    box = grid.input_box(ramp.shape)
    back = grid.to_input(patch, box)
    inside = back != 0
    np.testing.assert_allclose(back[inside], ramp[box][inside], atol=1e-2)
    # a zero difference leaves every voxel bit-identical
    np.testing.assert_array_equal(paste_difference(ramp, grid, np.zeros_like(patch)), ramp)


def test_choose_center_lies_in_eroded_organ_band():
    organ = ellipsoid((40, 40, 40), (20, 20, 20), (15, 12, 15))
    rng = np.random.default_rng(1)
    for _ in range(10):
        c = choose_center(organ, (1.0, 1.0, 1.0), rng)
        assert organ[tuple(c)] and 5 + 0.3 * 30 - 1 <= c[2] <= 5 + 0.7 * 30 + 1
    with pytest.raises(ValueError, match="empty"):
        choose_center(np.zeros((5, 5, 5), bool), (1, 1, 1), rng)


# -- data --------------------------------------------------------------------------------------
def test_cases_from_directory_and_manifest(data_dir, tmp_path):
    cases = find_cases(data_dir, "liver")
    assert len(cases) == 2 and all(c.tumor for c in cases)
    manifest = tmp_path / "m.csv"
    c = cases[0]
    manifest.write_text(f"# comment\n{c.ct},{c.organ[0]},{c.tumor[0]};{c.tumor[0]}\n")
    parsed = read_manifest(manifest)
    assert parsed[0].ct == c.ct and len(parsed[0].tumor) == 2
    with pytest.raises(TuringCTError, match="no case"):
        find_cases(data_dir, "pancreas")
    sampler = PatchSampler(cases, TEST_PATCH, mode="tumor")
    batch = sampler.sample(np.random.default_rng(0), 3)
    assert batch["ct"].shape == (3, 1, TEST_PATCH, TEST_PATCH, TEST_PATCH)
    assert batch["tumor"].sum() > 0 and not (batch["tumor"] > batch["organ"]).any()
    pseudo = PatchSampler(cases, TEST_PATCH, mode="tumor", tumor_source="ellipsoid")
    b2 = pseudo.sample(np.random.default_rng(0), 2)
    assert b2["tumor"].sum() > 0 and not (b2["tumor"] > b2["organ"]).any()


# -- network -----------------------------------------------------------------------------------
def test_autoencoder_downsamples_4x_and_overfits_one_batch():
    cfg = build_config("autoencoder", "tiny")
    torch.manual_seed(0)  # weight init only; the loss noise uses the explicit generator below
    ae = build_autoencoder(cfg["model"])
    ct, *_ = make_case(0)
    x = torch.from_numpy(hu_to_unit(ct[12:28, 12:28, 8:24], (-175, 250))[None, None].copy())
    x = torch.cat([x, x.flip(2)])
    assert ae.encode(x)[0].shape == (2, 4, 4, 4, 4)
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(80):
        opt.zero_grad()
        loss, terms = autoencoder_step(ae, x, gen, 1e-6)
        loss.backward()
        opt.step()
        losses.append(terms["l1"])
    # stated factor: L1 on a fixed batch falls at least 3x in 80 Adam steps
    assert np.mean(losses[-5:]) < losses[0] / 3, (losses[0], losses[-5:])


def test_training_resumes_exactly_and_checkpoint_round_trips(data_dir, tmp_path):
    cases = find_cases(data_dir, "liver")
    over = [f"patch_size={TEST_PATCH}", "train.steps=4", "train.save_every=2", "seed=3"]
    cfg = build_config("autoencoder", "tiny", overrides=over)
    torch.manual_seed(0)
    full = train_autoencoder(cases, cfg, tmp_path / "full", progress=False)
    half = build_config("autoencoder", "tiny", overrides=[*over, "train.steps=2"])
    torch.manual_seed(0)
    train_autoencoder(cases, half, tmp_path / "resumed", progress=False)
    torch.manual_seed(123)  # a resumed run must not depend on the init RNG: weights come from disk
    resumed = train_autoencoder(cases, cfg, tmp_path / "resumed", progress=False)
    a = load_checkpoint(full, method="autoencoder")
    b = load_checkpoint(resumed, method="autoencoder")
    assert a["step"] == b["step"] == 4
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(value, b["state_dict"][key], rtol=1e-5, atol=1e-6)
    assert a["config"] == cfg and a["code_version"] and len(a["data_hashes"]) == 6
    with pytest.raises(TuringCTError, match="autoencoder.*difftumor"):
        load_checkpoint(full, method="difftumor")


def test_cli_trains_and_resumes(data_dir, tmp_path, capsys):
    from turingct.cli import main

    out = tmp_path / "cli_ae"
    args = [
        "train",
        "autoencoder",
        "--data",
        str(data_dir),
        "--out",
        str(out),
        "--no-progress",
        "--device",
        "cpu",
        "--set",
        f"patch_size={TEST_PATCH}",
        "--set",
        "train.steps=2",
    ]
    assert main(args) == 0 and (out / "final.pt").is_file()
    assert main([*args[:-1], "train.steps=3"]) == 0  # resumes from last.pt at step 2
    assert load_checkpoint(out, method="autoencoder")["step"] == 3
    assert main([*args[:-2], "--set", "train.stepz=3"]) == 2
    assert "unknown key 'stepz'" in capsys.readouterr().err


def test_training_crops_are_cached_once_and_memory_mapped(data_dir, tmp_path, monkeypatch):
    """The sampler reads and resamples each CT once: later samplers (a resumed run, the next
    model) memory-map the cached 1 mm organ-box crop instead of reloading the volume."""
    import synth_backend.training.data as data_mod
    from synth_backend.training.data import PatchSampler, find_cases

    cases = find_cases(data_dir, "liver")
    calls = []
    real_load = data_mod.load_case
    monkeypatch.setattr(data_mod, "load_case", lambda case: calls.append(case) or real_load(case))
    first = PatchSampler(cases, 16, mode="tumor", cache_dir=tmp_path / "cache")
    a = first.sample(np.random.default_rng(0), 6)
    assert len(calls) == len(cases)
    second = PatchSampler(cases, 16, mode="tumor", cache_dir=tmp_path / "cache")
    b = second.sample(np.random.default_rng(0), 6)
    assert len(calls) == len(cases)  # no reload
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    cached = second.case(0)
    assert isinstance(cached.ct, np.memmap)
    full = real_load(cases[0])
    # the crop is the organ box plus one patch of margin (clipped to the volume)
    idx = np.argwhere(full.organ)
    expect = np.minimum(idx.max(0) + 17, full.organ.shape) - np.maximum(idx.min(0) - 16, 0)
    assert cached.ct.shape == tuple(expect)
    assert cached.organ.sum() == full.organ.sum()

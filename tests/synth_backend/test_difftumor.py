"""DiffTumor: schedules, training on a tiny set, and the Synthesizer contract (CPU, tiny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from synth_backend.difftumor.model import cosine_betas, make_scheduler
from synth_backend.difftumor.train import train_difftumor
from synth_backend.errors import TuringCTError
from synth_backend.registry import get_synthesizer
from synth_backend.training.checkpoint import load_checkpoint
from synth_backend.training.config import build_config
from synth_backend.training.data import find_cases
from tests.synth_backend._generative_data import (
    SPACING,
    limit_torch_threads,
    make_case,
    tiny_autoencoder,
)

one_thread = pytest.fixture(autouse=True, scope="module")(limit_torch_threads)
STEPS = 150


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data, ae = tiny_autoencoder(tmp_path_factory.getbasetemp() / "generative_shared")
    cfg = build_config(
        "difftumor",
        "tiny",
        overrides=[f"train.steps={STEPS}", "train.log_every=5", "train.lr=0.002"],
    )
    out = tmp_path_factory.mktemp("difftumor")
    final = train_difftumor(find_cases(data, "liver"), cfg, ae, out, progress=False)
    return final, out


def test_early_schedule_is_the_reference_four_step_ddpm():
    np.testing.assert_allclose(cosine_betas(4).numpy(), [0.153, 0.417, 0.708, 0.9999], atol=1e-3)
    cfg = build_config("difftumor", "tiny")
    sched = make_scheduler(cfg, sampling=True)
    # built with 4 train steps, so DDPM's t -> t-1 steps visit every timestep (the MONAI pitfall)
    assert sched.num_train_timesteps == 4 and sched.timesteps.tolist() == [3, 2, 1, 0]
    late = build_config("difftumor", "tiny", overrides=["stage=late", "num_train_timesteps=200"])
    ddim = make_scheduler(late, sampling=True)
    assert type(ddim).__name__ == "DDIMScheduler" and len(ddim.timesteps) == 50


def test_missing_checkpoint_names_the_training_command(tmp_path, monkeypatch):
    monkeypatch.setattr("synth_backend.weights.default_checkpoint", lambda method: None)
    with pytest.raises(TuringCTError, match="turingct train difftumor"):
        get_synthesizer("difftumor")
    with pytest.raises(TuringCTError, match="does not exist"):
        get_synthesizer("difftumor", checkpoint=tmp_path / "nope.pt")


@pytest.mark.slow
def test_denoiser_loss_falls_on_tiny_set(trained):
    final, out = trained
    rows = np.genfromtxt(out / "loss.csv", delimiter=",", names=True)
    first, last = rows["loss"][0], rows["loss"][-6:].mean()
    # stated factor: the L1 noise-prediction loss at the end is below 0.6x the first step's
    assert last < 0.6 * first, (first, last)
    payload = load_checkpoint(final, method="difftumor")
    assert payload["step"] == STEPS and payload["scale_factor"] > 0
    assert payload["autoencoder"]["sha256"] and payload["config"]["stage"] == "early"


@pytest.mark.slow
def test_synthesis_contract(trained):
    final, _ = trained
    synth = get_synthesizer("difftumor", checkpoint=final)
    assert len(synth.checkpoint_hash()) == 64
    ct, liver, _, _ = make_case(7)
    ct = np.rint(ct)  # real CT is integer HU; the result must stay integer HU
    res = synth.synthesize(ct, liver, organ="liver", spacing=SPACING, seed=11, device="cpu")
    assert res.ct.shape == ct.shape and res.tumor_mask.shape == ct.shape
    assert res.ct.dtype == np.float32 and np.array_equal(res.ct, np.rint(res.ct))
    assert res.info["sampling_steps"] == 4 and res.info["device"] == "cpu"
    tumor = res.tumor_mask.astype(bool)
    assert tumor.any() and not (tumor & (liver == 0)).any()
    changed = res.ct != ct
    assert changed.any()
    # blending sigma <= 4 mm: nothing changes farther than ~4 sigma (16 mm) from the tumor
    dist = ndimage.distance_transform_edt(~tumor, sampling=SPACING)
    assert dist[changed].max() <= 16.0
    # decoded values stay inside the HU window the autoencoder was trained on
    window_lo, window_hi = -175, 250
    new_vals = res.ct[tumor]
    assert new_vals.min() >= min(window_lo, ct[tumor].min()) - 1
    assert new_vals.max() <= max(window_hi, ct[tumor].max()) + 1
    again = synth.synthesize(ct, liver, organ="liver", spacing=SPACING, seed=11, device="cpu")
    np.testing.assert_array_equal(res.ct, again.ct)
    np.testing.assert_array_equal(res.tumor_mask, again.tumor_mask)
    assert res.params == again.params
    other = synth.synthesize(ct, liver, organ="liver", spacing=SPACING, seed=12, device="cpu")
    assert not np.array_equal(other.ct, res.ct)


@pytest.mark.slow
def test_sampling_uses_only_the_passed_generator(trained):
    final, _ = trained
    synth = get_synthesizer("difftumor", checkpoint=final)
    ct, liver, _, _ = make_case(8)
    torch.manual_seed(0)
    a = synth.synthesize(ct, liver, organ="liver", spacing=SPACING, seed=5, device="cpu")
    torch.manual_seed(999)  # global RNG state must not matter
    b = synth.synthesize(ct, liver, organ="liver", spacing=SPACING, seed=5, device="cpu")
    np.testing.assert_array_equal(a.ct, b.ct)


@pytest.mark.slow
def test_n_tumors_gives_that_many_lesions(trained):
    final, _ = trained
    synth = get_synthesizer("difftumor", checkpoint=final)
    ct, liver, _, _ = make_case(7)
    one = synth.synthesize(
        ct, liver, organ="liver", spacing=SPACING, seed=4, device="cpu", n_tumors=1
    )
    assert len(one.params["tumors"]) == 1  # not the early stage's 1-3
    two = synth.synthesize(
        ct, liver, organ="liver", spacing=SPACING, seed=4, device="cpu", size="tiny", n_tumors=2
    )
    assert two.params["n_tumors"] == 2 and len(two.params["lesions"]) == 2
    assert all(len(les["tumors"]) == 1 for les in two.params["lesions"])
    assert two.tumor_mask.any() and not (two.tumor_mask.astype(bool) & (liver == 0)).any()


class _PoorPredictor(torch.nn.Module):
    """A deliberately bad noise predictor: large noise, unrelated to its input."""

    def forward(self, x, timesteps):
        gen = torch.Generator().manual_seed(int(timesteps[0]))
        return 3.0 * torch.randn(x[:, :4].shape, generator=gen)


@pytest.mark.parametrize("overrides", [[], ["stage=late", "num_train_timesteps=200"]])
def test_both_samplers_clamp_x0_to_the_recorded_latent_range(overrides):
    from types import SimpleNamespace

    from synth_backend.difftumor.sample import denoise

    cfg = build_config("difftumor", "tiny", overrides=overrides)
    cond = torch.zeros((1, 5, 4, 4, 4))
    lo, hi = -2.5, 2.5
    model = SimpleNamespace(net=_PoorPredictor(), cfg=cfg, latent_range=(lo, hi))
    z, steps = denoise(model, cond, 4, torch.Generator().manual_seed(0))
    assert steps == (4 if not overrides else 50)
    # unclamped, these errors grow ~100x (T=4) / ~400x (T=200) on the way to x0
    assert float(z.min()) >= lo - 1e-4 and float(z.max()) <= hi + 1e-4
    # checkpoints written before the range was recorded fall back to +-4 (unit-variance latents)
    model.latent_range = None
    z, _ = denoise(model, cond, 4, torch.Generator().manual_seed(0))
    assert float(z.abs().max()) <= 4.0 + 1e-4


def test_late_stage_pseudo_tumors_mix_medium_and_large():
    from synth_backend.masks import _size_classes, sample_tumor_specs

    names = {_size_classes("late", np.random.default_rng(s))[0][0] for s in range(20)}
    assert names == {"medium", "large"}
    candidates = np.ones((64, 64, 64), bool)
    for s in range(10):
        (spec,) = sample_tumor_specs(np.random.default_rng(s), candidates, stage="late")
        assert min(spec.radii) >= 0.75 * 12 and max(spec.radii) <= 1.25 * 64


def test_train_late_stage_on_data_without_tumor_masks(tmp_path):
    """The label-free recipe trains the late model: pseudo tumors of the medium/large mix."""
    from synth_backend.autoencoder.train import train_autoencoder
    from synth_backend.training.data import PatchSampler
    from tests.synth_backend._generative_data import TEST_PATCH, write_cases
    from turingct.cli import main

    data = write_cases(tmp_path / "data", 1)
    for f in data.glob("*/segmentations/liver_tumor.nii.gz"):
        f.unlink()
    cases = find_cases(data, "liver")
    assert not cases[0].tumor
    sampler = PatchSampler(cases, 32, mode="tumor", stage="late")
    batch = sampler.sample(np.random.default_rng(0), 4)
    assert all(batch["tumor"][i].sum() > 0 for i in range(4))
    ae_cfg = build_config(
        "autoencoder", "tiny", overrides=[f"patch_size={TEST_PATCH}", "train.steps=2"]
    )
    ae = train_autoencoder(cases, ae_cfg, tmp_path / "ae", progress=False)
    rc = main(
        [
            "train",
            "difftumor",
            "--organ",
            "liver",
            "--data",
            str(data),
            "--autoencoder",
            str(ae),
            "--out",
            str(tmp_path / "late"),
            "--set",
            "stage=late",
            "--set",
            "num_train_timesteps=200",
            "--set",
            "train.steps=2",
            "--device",
            "cpu",
            "--no-progress",
        ]
    )
    assert rc in (0, None)
    payload = load_checkpoint(tmp_path / "late" / "final.pt", method="difftumor")
    assert payload["config"]["stage"] == "late" and payload["step"] == 2
    lo, hi = payload["latent_range"]
    assert lo < 0 < hi

"""TumorGen: BA-PMG boxes, decoder features, time convention, training and the contract."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.networks.schedulers import RFlowScheduler
from scipy import ndimage

from synth_backend.autoencoder.model import load_autoencoder
from synth_backend.errors import TuringCTError
from synth_backend.registry import get_synthesizer
from synth_backend.training.checkpoint import load_checkpoint
from synth_backend.training.config import build_config
from synth_backend.training.data import find_cases
from synth_backend.tumorgen.boxes import ba_pmg_boxes, tight_box
from synth_backend.tumorgen.model import decode_with_features
from synth_backend.tumorgen.train import train_tumorgen
from tests.synth_backend._generative_data import (
    SPACING,
    TEST_PATCH,
    limit_torch_threads,
    make_case,
    tiny_autoencoder,
)

one_thread = pytest.fixture(autouse=True, scope="module")(limit_torch_threads)
STEPS = 250
# Image-mask alignment floor on the overfit set: DSC between the refined mask and a 15 HU
# threshold of the image's own difference. Measured mean 0.50 (per seed 0.59, 0.52, 0.35, 0.55)
# after 250 tiny CPU steps; the paper reports 0.694 with nnU-Net predictions at full scale.
ALIGN_DSC_FLOOR = 0.4


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return tiny_autoencoder(tmp_path_factory.getbasetemp() / "generative_shared")


@pytest.fixture(scope="module")
def trained(shared, tmp_path_factory):
    data, ae = shared
    cfg = build_config(
        "tumorgen",
        "tiny",
        overrides=[f"train.steps={STEPS}", "train.log_every=5", "train.lr=0.002"],
    )
    out = tmp_path_factory.mktemp("tumorgen")
    return train_tumorgen(find_cases(data, "liver"), cfg, ae, out, progress=False), out


def test_ba_pmg_boxes_contain_the_tumor_within_offset_range():
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 1, 12, 12, 12), np.float32)
    masks[:, 0, 4:7, 5:8, 3:5] = 1.0
    boxes = ba_pmg_boxes(masks, alpha=0.25, rng=rng)
    for b in range(6):
        lo, hi = tight_box(boxes[b, 0])
        # contains B' = [4..6, 5..7, 3..4]; each face moved by d < alpha * 12 = 3 voxels
        assert (lo <= [4, 5, 3]).all() and (hi >= [6, 7, 4]).all()
        assert (lo >= [4 - 2, 5 - 2, 3 - 2]).all() and (hi <= [6 + 2, 7 + 2, 4 + 2]).all()
        assert boxes[b, 0].sum() == np.prod(hi - lo + 1)  # a solid box
    assert len({boxes[b].tobytes() for b in range(6)}) > 1  # offsets are random


def test_decoder_features_come_from_three_resolutions(shared):
    _, ae_path = shared
    ae, payload = load_autoencoder(ae_path)
    z = torch.zeros(1, 4, 4, 4, 4)
    image, feats = decode_with_features(ae, z)
    torch.testing.assert_close(image, ae.decode(z))  # same output as the plain decoder
    assert [f.shape[2] for f in feats] == [4, 8, 16]
    assert [f.shape[1] for f in feats] == list(reversed(payload["config"]["model"]["channels"]))


def test_rflow_time_convention_matches_the_paper():
    # MONAI timestep s <-> paper t = 1 - s/T: s = 0 is data, s = T is noise
    sched = RFlowScheduler(num_train_timesteps=1000, use_discrete_timesteps=False)
    x1, eps = torch.full((1, 1, 2, 2, 2), 3.0), torch.zeros(1, 1, 2, 2, 2)
    assert torch.equal(sched.add_noise(x1, eps, torch.tensor([0.0])), x1)
    assert torch.equal(sched.add_noise(x1, eps, torch.tensor([1000.0])), eps)
    # Euler with the exact straight-path velocity x1 - eps lands on x1 in 10 steps
    sched.set_timesteps(10)
    ts = [float(t) for t in sched.timesteps] + [0.0]
    x = eps.clone()
    for t, nxt in zip(ts[:-1], ts[1:], strict=True):
        x, _ = sched.step(x1 - eps, t, x, nxt)
    torch.testing.assert_close(x, x1)


def test_missing_checkpoint_names_the_training_command(tmp_path, monkeypatch):
    monkeypatch.setattr("synth_backend.weights.default_checkpoint", lambda method: None)
    with pytest.raises(TuringCTError, match="turingct train tumorgen"):
        get_synthesizer("tumorgen")
    with pytest.raises(TuringCTError, match="does not exist"):
        get_synthesizer("tumorgen", checkpoint=tmp_path / "nope.pt")


@pytest.mark.slow
def test_losses_fall_on_tiny_set(trained):
    final, out = trained
    rows = np.genfromtxt(out / "loss.csv", delimiter=",", names=True)
    # stated factors: total loss below 0.65x, mask-refiner loss below 0.6x the first step's
    # (the flow term is noisy: t is random per step). Measured with the weight init seeded from
    # cfg seed 0 / 1 / 2: total 0.35x / 0.40x / 0.51x, refiner 0.52x / 0.48x / 0.50x
    assert rows["loss"][-6:].mean() < 0.65 * rows["loss"][0]
    assert rows["rec"][-6:].mean() < 0.6 * rows["rec"][0]
    payload = load_checkpoint(final, method="tumorgen")
    assert payload["step"] == STEPS and payload["config"]["sample_steps"] == 10


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


@pytest.mark.slow
def test_synthesis_contract_and_image_mask_alignment(trained):
    final, _ = trained
    synth = get_synthesizer("tumorgen", checkpoint=final)
    dices = []
    for seed in range(4):
        ct, liver, _, _ = make_case(seed % 2)  # the overfit (training) cases
        ct = np.rint(ct)
        res = synth.synthesize(
            ct, liver, organ="liver", spacing=SPACING, seed=seed, device="cpu", size="small"
        )
        assert res.ct.shape == ct.shape and res.info["sampling_steps"] == 10
        assert np.array_equal(res.ct, np.rint(res.ct))
        tumor = res.tumor_mask.astype(bool)
        assert tumor.any() and not (tumor & (liver == 0)).any()
        changed = res.ct != ct
        # only the tumor and its 3 mm rim inside the box are pasted: nothing beyond ~5 mm
        dist = ndimage.distance_transform_edt(~tumor, sampling=SPACING)
        assert dist[changed].max() <= 6.0
        # the tumor is darker than its surroundings: threshold the image's own difference
        darker = (ct - res.ct) > 15.0
        dices.append(_dice(darker, tumor))
    assert np.mean(dices) >= ALIGN_DSC_FLOOR, dices
    again = synth.synthesize(
        ct, liver, organ="liver", spacing=SPACING, seed=3, device="cpu", size="small"
    )
    np.testing.assert_array_equal(again.ct, res.ct)
    np.testing.assert_array_equal(again.tumor_mask, res.tumor_mask)


@pytest.mark.slow
def test_user_box_and_step_count(trained):
    final, _ = trained
    synth = get_synthesizer("tumorgen", checkpoint=final)
    ct, liver, _, _ = make_case(0)
    box = [[16, 22], [16, 22], [13, 17]]  # input voxels (1.5 x 1.5 x 2 mm) inside the liver
    res = synth.synthesize(
        ct, liver, organ="liver", spacing=SPACING, seed=0, device="cpu", box=box, steps=3
    )
    assert res.info["sampling_steps"] == 3 and res.params["box"] == box
    idx = np.argwhere(res.tumor_mask)
    if len(idx):  # the mask stays within the latent box (4 mm cells) around the given box
        lo, hi = idx.min(0), idx.max(0)
        margin = np.ceil(4.0 / np.asarray(SPACING)) + 1
        assert (lo >= np.array([16, 16, 13]) - margin).all()
        assert (hi <= np.array([22, 22, 17]) + margin).all()
    assert res.params["patch_size"] == TEST_PATCH


@pytest.mark.slow
def test_n_tumors_gives_that_many_lesions(trained):
    final, _ = trained
    synth = get_synthesizer("tumorgen", checkpoint=final)
    ct, liver, _, _ = make_case(0)
    res = synth.synthesize(
        ct, liver, organ="liver", spacing=SPACING, seed=5, device="cpu", size="small", n_tumors=2
    )
    assert res.params["n_tumors"] == 2 and len(res.params["lesions"]) == 2
    assert res.tumor_mask.any() and not (res.tumor_mask.astype(bool) & (liver == 0)).any()
    with pytest.raises(TuringCTError, match="box"):
        synth.synthesize(
            ct,
            liver,
            organ="liver",
            spacing=SPACING,
            seed=5,
            device="cpu",
            n_tumors=2,
            box=[[10, 20], [10, 20], [10, 20]],
        )


def test_training_tumors_follow_the_size_mix_it_samples_from(shared):
    from synth_backend.training.data import PatchSampler

    data, _ = shared
    cases = find_cases(data, "liver")
    sampler = PatchSampler(cases, 32, mode="tumor", tumor_source="ellipsoid", sizes=("tiny",))
    for i in range(3):
        tumor = sampler.sample(np.random.default_rng(i), 1)["tumor"][0, 0] > 0
        # one tiny tumor: radii 3-5 mm per axis (+ deformation) -> well under a small one
        assert 0 < tumor.sum() <= 4 / 3 * np.pi * 6.5**3
        assert ndimage.label(tumor)[1] == 1


@pytest.fixture(scope="module")
def quick(shared, tmp_path_factory):
    """A TumorGen checkpoint after 2 steps: enough for shape and bound checks, not quality."""
    data, ae = shared
    cfg = build_config("tumorgen", "tiny", overrides=["train.steps=2", "sizes=[tiny, small]"])
    out = tmp_path_factory.mktemp("tumorgen_quick")
    return train_tumorgen(find_cases(data, "liver"), cfg, ae, out, progress=False)


def test_sampling_only_the_sizes_recorded_in_the_checkpoint(quick):
    payload = load_checkpoint(quick, method="tumorgen")
    assert payload["config"]["sizes"] == ["tiny", "small"] and payload["sizes"] == ["tiny", "small"]
    synth = get_synthesizer("tumorgen", checkpoint=quick)
    ct, liver, _, _ = make_case(3)
    with pytest.raises(TuringCTError, match="trained on"):
        synth.synthesize(
            ct, liver, organ="liver", spacing=SPACING, seed=0, device="cpu", size="large"
        )
    drawn = {
        synth.synthesize(ct, liver, organ="liver", spacing=SPACING, seed=s, device="cpu").params[
            "size"
        ]
        for s in range(6)
    }
    assert drawn <= {"tiny", "small"}


def test_refined_mask_stays_inside_the_box_and_the_organ(quick):
    from synth_backend.tumorgen.boxes import box_tensor, upsample_box
    from synth_backend.tumorgen.sample import TumorGenModel, sample_patch

    model = TumorGenModel.load(quick)
    n = TEST_PATCH // 4
    box = torch.from_numpy(box_tensor([1, 1, 1], [2, 2, 2], (n,) * 3)[None, None])
    x = torch.zeros((1, 1, TEST_PATCH, TEST_PATCH, TEST_PATCH))
    _, refined, _ = sample_patch(model, x, box, torch.Generator().manual_seed(0))
    outside = upsample_box(box) < 0.5
    assert float(refined[outside].abs().max()) == 0.0
    synth = get_synthesizer("tumorgen", checkpoint=quick)
    ct, liver, _, _ = make_case(4)
    box_in = [[14, 24], [14, 24], [10, 20]]
    res = synth.synthesize(
        ct, liver, organ="liver", spacing=SPACING, seed=1, device="cpu", box=box_in
    )
    tumor = res.tumor_mask.astype(bool)
    assert not (tumor & (liver == 0)).any()
    idx = np.argwhere(tumor)
    if len(idx):  # inside the latent box (4 mm cells) that covers the given box
        margin = np.ceil(4.0 / np.asarray(SPACING)) + 1
        assert (idx.min(0) >= np.array([14, 14, 10]) - margin).all()
        assert (idx.max(0) <= np.array([24, 24, 20]) + margin).all()

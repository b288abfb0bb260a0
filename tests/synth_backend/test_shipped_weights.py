"""The shipped small weights (synth_backend/weights/): the default checkpoint of the learned
methods, trained on redistributable data only, producing a darker lesion inside the liver."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth_backend.errors import TuringCTError
from synth_backend.io import save_volume, sha256_file
from synth_backend.registry import get_synthesizer
from synth_backend.training.checkpoint import load_checkpoint
from synth_backend.weights import AUTOENCODER, default_checkpoint
from tests.synth_backend._generative_data import SPACING, limit_torch_threads, make_case

one_thread = pytest.fixture(autouse=True, scope="module")(limit_torch_threads)
METHODS = ("difftumor", "tumorgen")


@pytest.mark.parametrize("method", METHODS)
def test_shipped_weights_are_the_default_and_never_saw_ircad(method):
    path = default_checkpoint(method)
    assert path is not None and path.is_file()
    assert path.with_name(AUTOENCODER).is_file()
    synth = get_synthesizer(method)
    assert synth.checkpoint == path and synth.checkpoint_hash() == sha256_file(path)
    payload = load_checkpoint(path, method=method)
    assert payload["config"]["preset"] == "small" and payload["latent_range"][0] < 0
    assert payload["autoencoder"]["sha256"] == sha256_file(path.with_name(AUTOENCODER))
    trained_on = " ".join(payload["data_hashes"]).lower()
    assert "ircad" not in trained_on  # license: no derivatives of the IRCAD files
    assert "example_ct_dicom" not in trained_on  # held out for the usability figures
    if method == "tumorgen":
        assert payload["config"]["sizes"] == ["tiny", "small"]
    else:
        assert payload["config"]["stage"] == "early"


@pytest.mark.parametrize("method", METHODS)
def test_shipped_weights_make_a_darker_lesion_inside_the_liver(method, tmp_path):
    from synth_backend.runner import synthesize_file

    ct, liver, _, affine = make_case(7)
    save_volume(np.rint(ct), affine, tmp_path / "ct.nii.gz", "ct")
    save_volume(liver, affine, tmp_path / "liver.nii.gz", "mask")
    out = synthesize_file(
        method,
        tmp_path / "ct.nii.gz",
        tmp_path / "liver.nii.gz",
        organ="liver",
        out_dir=tmp_path / "out",
        seed=3,
        device="cpu",
    )
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["checkpoint_hash"] == sha256_file(default_checkpoint(method))
    assert prov["checkpoint"] == str(default_checkpoint(method).resolve())
    stats = prov["tumor"]
    assert stats["voxels"] > 0 and stats["hu_contrast"] < 0  # darker than the ring around it
    from synth_backend.io import load_volume

    mask = load_volume(out / "tumor_mask.nii.gz", "mask").array > 0
    assert not (mask & (liver == 0)).any()
    assert load_volume(out / "ct.nii.gz", "ct").array[mask].min() >= -100  # no black hole


@pytest.mark.parametrize("method", METHODS)
def test_shipped_liver_weights_refuse_other_organs(method):
    ct, liver, _, _ = make_case(7)
    with pytest.raises(TuringCTError, match="trained on the liver only"):
        get_synthesizer(method).synthesize(
            ct, liver, organ="pancreas", spacing=SPACING, seed=0, device="cpu"
        )


def test_shipped_difftumor_uses_the_late_model_for_medium_tumors():
    from synth_backend.weights import stage_checkpoint

    late = stage_checkpoint("difftumor", "late")
    assert late is not None
    payload = load_checkpoint(late, method="difftumor")
    assert payload["config"]["stage"] == "late" and payload["config"]["num_train_timesteps"] == 200
    ct, liver, _, _ = make_case(7)
    synth = get_synthesizer("difftumor")
    early = synth.synthesize(ct, liver, organ="liver", spacing=SPACING, seed=1, device="cpu")
    assert early.info["sampler"] == "DDPM" and synth.checkpoint == default_checkpoint("difftumor")
    res = synth.synthesize(
        ct, liver, organ="liver", spacing=SPACING, seed=1, device="cpu", size="medium"
    )
    assert res.info["sampler"] == "DDIM" and res.info["num_train_timesteps"] == 200
    assert synth.checkpoint == late and synth.checkpoint_hash() == sha256_file(late)
    assert res.tumor_mask.any() and not (res.tumor_mask.astype(bool) & (liver == 0)).any()
    with pytest.raises(TuringCTError, match="stage must be one of"):
        synth.synthesize(
            ct, liver, organ="liver", spacing=SPACING, seed=1, device="cpu", stage="huge"
        )

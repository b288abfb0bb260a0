"""File-level synthesis: outputs on the input grid, provenance, input validation, CLI."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from synth_backend.errors import VolumeError
from synth_backend.io import save_volume
from synth_backend.runner import (
    EmptyOrganError,
    OrganTooSmallError,
    SynthesisInputError,
    synthesize_file,
)
from tests.synth_backend.test_handcrafted import SPACING, organ_phantom

# an LPS-oriented file: the outputs must come back in the file's own orientation
AFFINE = np.diag([-SPACING[0], -SPACING[1], SPACING[2], 1.0])


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("case")
    ct, organ = organ_phantom()
    labels = organ.astype(np.uint8)
    labels[:10] = np.where(labels[:10] > 0, 2, 0)  # a second label for the label-map case
    save_volume(ct, AFFINE, root / "ct.nii.gz", "ct")
    save_volume(organ.astype(np.uint8) * 255, AFFINE, root / "organ_0_255.nii.gz", "mask")
    save_volume(labels, AFFINE, root / "labels.nii.gz", "mask")
    save_volume(np.zeros(ct.shape, np.uint8), AFFINE, root / "empty.nii.gz", "mask")
    save_volume(np.zeros((10, 10, 10), np.uint8), AFFINE, root / "other_grid.nii.gz", "mask")
    return root


@pytest.mark.parametrize("method", ["handcrafted", "pixel2cancer"])
def test_outputs_on_input_grid_with_provenance(case, tmp_path, method):
    out = synthesize_file(method, case / "ct.nii.gz", case / "organ_0_255.nii.gz",
                          organ="liver", out_dir=tmp_path / "out", seed=7, size="small")
    src = nib.load(case / "ct.nii.gz")
    for name, dtype in (("ct.nii.gz", np.int16), ("tumor_mask.nii.gz", np.uint8)):
        img = nib.load(out / name)
        assert img.shape == src.shape and np.allclose(img.affine, src.affine)
        assert img.get_data_dtype() == dtype
    tumor = np.asarray(nib.load(out / "tumor_mask.nii.gz").dataobj)
    organ = np.asarray(nib.load(case / "organ_0_255.nii.gz").dataobj) > 0
    assert tumor.any() and not (tumor.astype(bool) & ~organ).any()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["method"] == method and prov["seed"] == 7 and prov["device"] == "cpu"
    assert len(prov["inputs"]["ct"]["sha256"]) == 64 and prov["code_version"]
    assert prov["tumor"]["count"] >= 1 and prov["tumor"]["hu_contrast"] < 0
    assert prov["options"] == {"size": "small"} and prov["params"]
    assert prov["outputs"]["ct.nii.gz"]["sha256"]


def test_same_seed_same_files(case, tmp_path):
    a = synthesize_file("handcrafted", case / "ct.nii.gz", case / "organ_0_255.nii.gz",
                        organ="liver", out_dir=tmp_path / "a", seed=1, size="tiny")
    b = synthesize_file("handcrafted", case / "ct.nii.gz", case / "organ_0_255.nii.gz",
                        organ="liver", out_dir=tmp_path / "b", seed=1, size="tiny")
    for name in ("ct.nii.gz", "tumor_mask.nii.gz"):
        assert np.array_equal(np.asarray(nib.load(a / name).dataobj),
                              np.asarray(nib.load(b / name).dataobj))


def test_label_map_needs_organ_label(case, tmp_path):
    with pytest.raises(SynthesisInputError, match="--organ-label"):
        synthesize_file("handcrafted", case / "ct.nii.gz", case / "labels.nii.gz",
                        organ="liver", out_dir=tmp_path / "x", seed=0)
    out = synthesize_file("handcrafted", case / "ct.nii.gz", case / "labels.nii.gz",
                          organ="liver", organ_label=1, out_dir=tmp_path / "y", seed=0,
                          size="tiny")
    assert (out / "provenance.json").is_file()
    with pytest.raises(EmptyOrganError, match="label 9 does not occur"):
        synthesize_file("handcrafted", case / "ct.nii.gz", case / "labels.nii.gz",
                        organ="liver", organ_label=9, out_dir=tmp_path / "z", seed=0)


def test_bad_inputs_name_the_file(case, tmp_path):
    with pytest.raises(EmptyOrganError, match="empty.nii.gz: organ mask is empty"):
        synthesize_file("pixel2cancer", case / "ct.nii.gz", case / "empty.nii.gz",
                        organ="liver", out_dir=tmp_path / "e", seed=0)
    with pytest.raises(VolumeError, match="other_grid.nii.gz"):
        synthesize_file("pixel2cancer", case / "ct.nii.gz", case / "other_grid.nii.gz",
                        organ="liver", out_dir=tmp_path / "g", seed=0)
    with pytest.raises(OrganTooSmallError, match=r"ct.nii.gz: .*smaller than the requested"):
        synthesize_file("pixel2cancer", case / "ct.nii.gz", case / "organ_0_255.nii.gz",
                        organ="liver", out_dir=tmp_path / "s", seed=0, diameter_mm=150.0)
    assert not (tmp_path / "s" / "provenance.json").exists()


def test_cli_synth_and_preview(case, tmp_path, capsys):
    from turingct.cli import main

    rc = main(["synth", "--method", "handcrafted", "--organ", "liver", "--ct",
               str(case / "ct.nii.gz"), "--organ-mask", str(case / "organ_0_255.nii.gz"),
               "--out", str(tmp_path / "o"), "--seed", "3", "--diameter-mm", "15"])
    assert rc == 0 and "equivalent diameter" in capsys.readouterr().out
    rc = main(["synth", "preview", str(tmp_path / "o"), "--out", str(tmp_path / "p.png")])
    from PIL import Image

    img = np.asarray(Image.open(tmp_path / "p.png"))
    assert rc == 0 and img.ndim == 3
    assert ((img[..., 0] == 255) & (img[..., 1] == 48)).any()  # the contour is drawn
    rc = main(["synth", "--method", "handcrafted", "--organ", "liver", "--ct",
               str(case / "ct.nii.gz"), "--organ-mask", str(case / "empty.nii.gz"),
               "--out", str(tmp_path / "bad")])
    assert rc == 2 and "organ mask is empty" in capsys.readouterr().err

"""File-level synthesis: outputs on the input grid, provenance, input validation, CLI."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from synth_backend.errors import (
    EmptyOrganError,
    OrganTooSmallError,
    SynthesisInputError,
    VolumeError,
)
from synth_backend.io import save_volume
from synth_backend.runner import synthesize_file
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
    out = synthesize_file(
        method,
        case / "ct.nii.gz",
        case / "organ_0_255.nii.gz",
        organ="liver",
        out_dir=tmp_path / "out",
        seed=7,
        size="small",
    )
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
    a = synthesize_file(
        "handcrafted",
        case / "ct.nii.gz",
        case / "organ_0_255.nii.gz",
        organ="liver",
        out_dir=tmp_path / "a",
        seed=1,
        size="tiny",
    )
    b = synthesize_file(
        "handcrafted",
        case / "ct.nii.gz",
        case / "organ_0_255.nii.gz",
        organ="liver",
        out_dir=tmp_path / "b",
        seed=1,
        size="tiny",
    )
    for name in ("ct.nii.gz", "tumor_mask.nii.gz"):
        assert np.array_equal(
            np.asarray(nib.load(a / name).dataobj), np.asarray(nib.load(b / name).dataobj)
        )


def test_label_map_needs_organ_label(case, tmp_path):
    with pytest.raises(SynthesisInputError, match="--organ-label"):
        synthesize_file(
            "handcrafted",
            case / "ct.nii.gz",
            case / "labels.nii.gz",
            organ="liver",
            out_dir=tmp_path / "x",
            seed=0,
        )
    out = synthesize_file(
        "handcrafted",
        case / "ct.nii.gz",
        case / "labels.nii.gz",
        organ="liver",
        organ_label=1,
        out_dir=tmp_path / "y",
        seed=0,
        size="tiny",
    )
    assert (out / "provenance.json").is_file()
    with pytest.raises(EmptyOrganError, match="label 9 does not occur"):
        synthesize_file(
            "handcrafted",
            case / "ct.nii.gz",
            case / "labels.nii.gz",
            organ="liver",
            organ_label=9,
            out_dir=tmp_path / "z",
            seed=0,
        )


def test_bad_inputs_name_the_file(case, tmp_path):
    with pytest.raises(EmptyOrganError, match="empty.nii.gz: organ mask is empty"):
        synthesize_file(
            "pixel2cancer",
            case / "ct.nii.gz",
            case / "empty.nii.gz",
            organ="liver",
            out_dir=tmp_path / "e",
            seed=0,
        )
    with pytest.raises(VolumeError, match="other_grid.nii.gz"):
        synthesize_file(
            "pixel2cancer",
            case / "ct.nii.gz",
            case / "other_grid.nii.gz",
            organ="liver",
            out_dir=tmp_path / "g",
            seed=0,
        )
    with pytest.raises(OrganTooSmallError, match=r"ct.nii.gz: .*smaller than the requested"):
        synthesize_file(
            "pixel2cancer",
            case / "ct.nii.gz",
            case / "organ_0_255.nii.gz",
            organ="liver",
            out_dir=tmp_path / "s",
            seed=0,
            diameter_mm=150.0,
        )
    assert not (tmp_path / "s" / "provenance.json").exists()


def test_cli_synth_and_preview(case, tmp_path, capsys):
    from turingct.cli import main

    rc = main(
        [
            "synth",
            "--method",
            "handcrafted",
            "--organ",
            "liver",
            "--ct",
            str(case / "ct.nii.gz"),
            "--organ-mask",
            str(case / "organ_0_255.nii.gz"),
            "--out",
            str(tmp_path / "o"),
            "--seed",
            "3",
            "--diameter-mm",
            "15",
        ]
    )
    assert rc == 0 and "1 lesion(s): " in capsys.readouterr().out
    rc = main(["synth", "preview", str(tmp_path / "o"), "--out", str(tmp_path / "p.png")])
    from PIL import Image

    img = np.asarray(Image.open(tmp_path / "p.png"))
    assert rc == 0 and img.ndim == 3
    assert ((img[..., 0] == 255) & (img[..., 1] == 48)).any()  # the contour is drawn
    rc = main(
        [
            "synth",
            "--method",
            "handcrafted",
            "--organ",
            "liver",
            "--ct",
            str(case / "ct.nii.gz"),
            "--organ-mask",
            str(case / "empty.nii.gz"),
            "--out",
            str(tmp_path / "bad"),
        ]
    )
    assert rc == 2 and "organ mask is empty" in capsys.readouterr().err


def test_statistics_list_every_lesion_never_the_union():
    from synth_backend.geometry import equivalent_diameter_mm
    from synth_backend.provenance import tumor_statistics

    spacing = (0.8, 0.8, 2.0)
    ct = np.zeros((60, 60, 30), np.float32)
    organ = np.ones(ct.shape, bool)
    tumor = np.zeros(ct.shape, bool)
    tumor[10:20, 10:20, 5:9] = True  # 400 voxels
    tumor[40:45, 40:46, 20:22] = True  # 60 voxels
    stats = tumor_statistics(ct, tumor, organ, spacing)
    assert stats["count"] == 2 and "equivalent_diameter_mm" not in stats
    big, small = stats["lesions"]
    assert big["voxels"] == 400 and small["voxels"] == 60
    assert big["equivalent_diameter_mm"] == pytest.approx(
        equivalent_diameter_mm(400, spacing), abs=0.01
    )
    assert big["centre_voxel"] == [14.5, 14.5, 6.5] and small["centre_voxel"] == [42.0, 42.5, 20.5]
    assert stats["largest_diameter_mm"] == big["equivalent_diameter_mm"]
    assert stats["component_diameters_mm"] == [
        big["equivalent_diameter_mm"],
        small["equivalent_diameter_mm"],
    ]


def test_cli_reports_each_lesion_and_takes_n_tumors(case, tmp_path, capsys):
    from turingct.cli import main

    rc = main(
        [
            "synth",
            "--method",
            "pixel2cancer",
            "--organ",
            "liver",
            "--ct",
            str(case / "ct.nii.gz"),
            "--organ-mask",
            str(case / "organ_0_255.nii.gz"),
            "--out",
            str(tmp_path / "o"),
            "--seed",
            "2",
            "--diameter-mm",
            "14",
            "--n-tumors",
            "2",
        ]
    )
    out = capsys.readouterr().out
    prov = json.loads((tmp_path / "o" / "provenance.json").read_text())
    assert rc == 0 and prov["options"]["n_tumors"] == 2 and len(prov["params"]["clusters"]) == 2
    lesions = prov["tumor"]["lesions"]
    assert f"{prov['tumor']['count']} lesion(s): " in out
    for les in lesions:  # every lesion is reported with its own size, none with the union's
        assert f"{les['equivalent_diameter_mm']:.1f} mm ({les['voxels']} voxels)" in out
        assert 8.0 < les["equivalent_diameter_mm"] < 20.0
    rc = main(
        [
            "synth",
            "--method",
            "handcrafted",
            "--organ",
            "liver",
            "--ct",
            str(case / "ct.nii.gz"),
            "--organ-mask",
            str(case / "organ_0_255.nii.gz"),
            "--out",
            str(tmp_path / "bad"),
            "--n-tumors",
            "0",
        ]
    )
    assert rc == 2 and "--n-tumors: must be >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("method", ["handcrafted", "pixel2cancer", "difftumor", "tumorgen"])
def test_n_tumors_option_for_every_method_and_batch(method):
    from turingct.cli import build_parser
    from turingct.cli.synth_cmd import _options

    parser = build_parser()
    one = parser.parse_args(["synth", "--method", method, "--organ", "liver", "--n-tumors", "3"])
    batch = parser.parse_args(
        [
            "synth",
            "batch",
            "--method",
            method,
            "--organ",
            "liver",
            "--from-dir",
            "x",
            "--out",
            "y",
            "--n-tumors",
            "3",
        ]
    )
    assert _options(one)["n_tumors"] == 3 and _options(batch)["n_tumors"] == 3


def test_handcrafted_n_tumors_overrides_the_class_count():
    from synth_backend.handcrafted.params import sample_params

    organ = np.ones((80, 80, 60), dtype=bool)
    for kw, n in (
        ({"size": "tiny", "n_tumors": 2}, 2),
        ({"diameter_mm": 12.0}, 1),
        ({"diameter_mm": 12.0, "n_tumors": 4}, 4),
        ({"size": "mix", "n_tumors": 5}, 5),
    ):
        p = sample_params(np.random.default_rng(0), organ, (1.0, 1.0, 1.0), organ="liver", **kw)
        assert len(p.tumors) == n, kw


def test_learned_methods_make_n_tumors_one_lesion_call_each():
    from dataclasses import asdict, dataclass

    from synth_backend.base import SynthesisResult
    from synth_backend.training.learned import CheckpointSynthesizer

    @dataclass(frozen=True)
    class Blob:
        seed: int
        centre: tuple[int, int, int]

        def to_dict(self):
            return asdict(self)

        @classmethod
        def from_dict(cls, data):
            return cls(data["seed"], tuple(data["centre"]))

    class OneBlob(CheckpointSynthesizer):
        """Stand-in for DiffTumor/TumorGen: one 3x3x3 blob at a seeded organ voxel per call."""

        name = "difftumor"
        params_class = Blob

        def __init__(self):
            self.calls = []

        def sample_lesion(self, ct, organ_mask, *, organ, spacing, seed, single, **options):
            self.calls.append(seed)
            idx = np.argwhere(organ_mask)
            return Blob(
                seed, tuple(int(v) for v in idx[np.random.default_rng(seed).integers(len(idx))])
            )

        def apply_lesion(self, ct, organ_mask, *, spacing, params, device):
            mask = np.zeros(ct.shape, np.uint8)
            mask[tuple(slice(max(0, v - 1), v + 2) for v in params.centre)] = 1
            mask &= organ_mask.astype(np.uint8)
            return SynthesisResult(
                ct - 50.0 * mask, mask, params.to_dict(), {"device": "cpu", "seconds": 0.01}
            )

    ct = np.zeros((40, 40, 40), np.float32)
    organ = np.zeros(ct.shape, bool)
    organ[5:35, 5:35, 5:35] = True
    synth = OneBlob()
    res = synth.synthesize(ct, organ, organ="liver", spacing=(1, 1, 1), seed=3, n_tumors=4)
    assert len(synth.calls) == 4 and len(set(synth.calls)) == 4
    assert res.params["n_tumors"] == 4 and len(res.params["lesions"]) == 4
    assert int(res.tumor_mask.sum()) > 27 and (res.ct[res.tumor_mask > 0] < 0).all()
    again = OneBlob().synthesize(ct, organ, organ="liver", spacing=(1, 1, 1), seed=3, n_tumors=4)
    np.testing.assert_array_equal(res.tumor_mask, again.tumor_mask)
    # the stored lesions replay without drawing anything
    fresh = OneBlob()
    replayed = fresh.replay(ct, organ, spacing=(1, 1, 1), params=res.params)
    assert fresh.calls == [] and replayed.params == res.params
    np.testing.assert_array_equal(replayed.ct, res.ct)


def test_cli_profile_vtt_single_and_batch(case, tmp_path, capsys):
    from turingct.cli import build_parser, main
    from turingct.cli.synth_cmd import _options

    save_volume(np.zeros((64, 64, 40), np.uint8), AFFINE, tmp_path / "vessels.nii.gz", "mask")
    rc = main(
        [
            "synth",
            "--method",
            "handcrafted",
            "--organ",
            "liver",
            "--ct",
            str(case / "ct.nii.gz"),
            "--organ-mask",
            str(case / "organ_0_255.nii.gz"),
            "--out",
            str(tmp_path / "v"),
            "--size",
            "medium",
            "--profile",
            "vtt",
            "--vessel-mask",
            str(tmp_path / "vessels.nii.gz"),
        ]
    )
    prov = json.loads((tmp_path / "v" / "provenance.json").read_text())
    assert rc == 0 and prov["options"]["profile"] == "vtt" and prov["params"]["profile"] == "vtt"
    assert prov["params"]["vessel_source"] == "mask" and prov["inputs"]["vessel_mask"]["sha256"]
    capsys.readouterr()
    rc = main(
        [
            "synth",
            "--method",
            "pixel2cancer",
            "--organ",
            "liver",
            "--ct",
            str(case / "ct.nii.gz"),
            "--organ-mask",
            str(case / "organ_0_255.nii.gz"),
            "--out",
            str(tmp_path / "p"),
            "--profile",
            "vtt",
        ]
    )
    assert rc == 2 and "--profile: is a handcrafted option" in capsys.readouterr().err
    batch = build_parser().parse_args(
        [
            "synth",
            "batch",
            "--method",
            "handcrafted",
            "--organ",
            "liver",
            "--from-dir",
            "x",
            "--out",
            "y",
            "--profile",
            "vtt",
        ]
    )
    assert _options(batch)["profile"] == "vtt"

"""A corpus of malformed and hostile dataset inputs, built on demand in a temporary folder.

Each entry writes one bad input and returns ``(import_args, expected_fragment)``: the arguments
of ``turingct data import`` and a piece of the one-line error it must print. Built at test time
(no binary fixtures in the repository) from generated arrays only.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np

Entry = Callable[[Path], tuple[list[str], str]]
SHAPE = (12, 10, 8)


def _ct_array(seed=0):
    return np.random.default_rng(seed).integers(-1000, 300, size=SHAPE).astype(np.int16)


def _organ_array():
    mask = np.zeros(SHAPE, np.uint8)
    mask[2:8, 2:8, 2:6] = 1
    return mask


def _save(path: Path, array, affine=None) -> Path:
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


def _manifest(d: Path, ct: Path, mask: Path, extra: str = "") -> list[str]:
    header = "case,ct,organ,organ_mask" + (",organ_label" if extra else "")
    row = f"c1,{os.fsdecode(ct)},liver,{mask}" + (f",{extra}" if extra else "")
    (d / "m.csv").write_text(f"{header}\n{row}\n", encoding="utf-8", errors="surrogateescape")
    return ["--format", "manifest", str(d / "m.csv")]


def _good_pair(d: Path) -> tuple[Path, Path]:
    return _save(d / "ct.nii.gz", _ct_array()), _save(d / "organ.nii.gz", _organ_array())


def truncated_gzip(d):
    ct, mask = _good_pair(d)
    data = ct.read_bytes()
    ct.write_bytes(data[: len(data) // 2])
    return _manifest(d, ct, mask), "truncated or corrupt"


def wrong_magic(d):
    _, mask = _good_pair(d)
    ct = d / "noise.nii.gz"
    ct.write_bytes(gzip.compress(os.urandom(2000)))
    return _manifest(d, ct, mask), "not a readable NIfTI"


def text_file_as_nifti(d):
    _, mask = _good_pair(d)
    ct = d / "notes.nii"
    ct.write_text("this is not an image\n")
    return _manifest(d, ct, mask), "not a readable NIfTI"


def absurd_dimensions(d):
    # header claims 4000^3 int16 voxels (~128 GB) in a tiny file
    _, mask = _good_pair(d)
    hdr = nib.Nifti1Header()
    hdr.set_data_shape((4000, 4000, 4000))
    hdr.set_data_dtype(np.int16)
    ct = d / "huge.nii"
    with open(ct, "wb") as handle:
        handle.write(hdr.binaryblock + b"\x00" * 4 + b"\x00" * 1000)
    return _manifest(d, ct, mask), "header claims shape"


def nan_voxels(d):
    ct = _save(d / "ct.nii.gz", np.where(_organ_array() > 0, np.nan, 40).astype(np.float32))
    return _manifest(d, ct, _save(d / "organ.nii.gz", _organ_array())), "NaN/inf"


def four_d(d):
    ct = _save(d / "ct4d.nii.gz", np.stack([_ct_array(), _ct_array(1)], axis=-1))
    return _manifest(d, ct, _save(d / "organ.nii.gz", _organ_array())), "must be a 3D volume"


def two_d(d):
    ct = _save(d / "ct2d.nii.gz", _ct_array()[:, :, 0])
    return _manifest(d, ct, _save(d / "organ.nii.gz", _organ_array())), "must be a 3D volume"


def shape_mismatch(d):
    ct = _save(d / "ct.nii.gz", _ct_array())
    return _manifest(d, ct, _save(d / "organ.nii.gz", _organ_array()[:, :, :4])), "shape"


def affine_mismatch(d):
    ct = _save(d / "ct.nii.gz", _ct_array())
    mask = _save(d / "organ.nii.gz", _organ_array(), np.diag([1.5, 1, 1, 1]))
    return _manifest(d, ct, mask), "affine differs"


def fractional_labels(d):
    ct = _save(d / "ct.nii.gz", _ct_array())
    mask = _save(d / "organ.nii.gz", _organ_array() * np.float32(0.5))
    return _manifest(d, ct, mask), "must be integers"


def negative_labels(d):
    ct = _save(d / "ct.nii.gz", _ct_array())
    mask = _save(d / "organ.nii.gz", -_organ_array().astype(np.int16))
    return _manifest(d, ct, mask), "[0, 255]"


def nan_mask(d):
    ct = _save(d / "ct.nii.gz", _ct_array())
    mask = _save(d / "organ.nii.gz", np.where(_organ_array() > 0, np.nan, 0).astype(np.float32))
    return _manifest(d, ct, mask), "NaN/inf"


def normalized_ct(d):
    ct = _save(d / "ct.nii.gz", np.random.default_rng(0).random(SHAPE).astype(np.float32))
    return _manifest(d, ct, _save(d / "organ.nii.gz", _organ_array())), "does not look like CT"


def empty_organ(d):
    ct = _save(d / "ct.nii.gz", _ct_array())
    mask = _save(d / "organ.nii.gz", np.zeros(SHAPE, np.uint8))
    return _manifest(d, ct, mask), "liver mask is empty"


def label_not_in_mask(d):
    ct, mask = _good_pair(d)
    return _manifest(d, ct, mask, extra="7"), "liver mask is empty for labels [7]"


def missing_file(d):
    _, mask = _good_pair(d)
    return _manifest(d, d / "nowhere.nii.gz", mask), "file does not exist"


def manifest_missing_columns(d):
    (d / "m.csv").write_text("case,ct\nc1,ct.nii.gz\n")
    return ["--format", "manifest", str(d / "m.csv")], "missing column(s)"


def manifest_bad_organ(d):
    ct, mask = _good_pair(d)
    (d / "m.csv").write_text(f"case,ct,organ,organ_mask\nc1,{ct},lung,{mask}\n")
    return ["--format", "manifest", str(d / "m.csv")], "organ must be one of"


def manifest_bad_label(d):
    ct, mask = _good_pair(d)
    return _manifest(d, ct, mask, extra="one"), "organ_label must be integers"


def non_utf8_file_name(d):
    _, mask = _good_pair(d)
    name = os.fsdecode(b"ct_\xff\xfe.nii.gz")
    ct = d / name
    ct.write_bytes(b"\x1f\x8b garbage")
    return _manifest(d, ct, mask), "ct_"


def msd_without_dataset_json(d):
    (d / "imagesTr").mkdir()
    return ["--format", "msd", str(d)], "no dataset.json"


def msd_invalid_json(d):
    (d / "dataset.json").write_text("{labels: nope")
    return ["--format", "msd", str(d)], "invalid JSON"


def kits_without_cases(d):
    return ["--format", "kits", str(d)], "no case_xxxxx folders"


def atlas_without_cases(d):
    return ["--format", "atlas", str(d)], "no <case>/ct.nii.gz"


def totalseg_without_class_map(d):
    ct, _ = _good_pair(d)
    seg = _save(d / "seg" / "multi.nii.gz" if (d / "seg").mkdir() is None else d, _organ_array())
    return ["--format", "totalseg", str(seg), "--ct", str(ct)], "without a class map"


CORPUS: dict[str, Entry] = {
    f.__name__: f
    for f in (
        truncated_gzip,
        wrong_magic,
        text_file_as_nifti,
        absurd_dimensions,
        nan_voxels,
        four_d,
        two_d,
        shape_mismatch,
        affine_mismatch,
        fractional_labels,
        negative_labels,
        nan_mask,
        normalized_ct,
        empty_organ,
        label_not_in_mask,
        missing_file,
        manifest_missing_columns,
        manifest_bad_organ,
        manifest_bad_label,
        non_utf8_file_name,
        msd_without_dataset_json,
        msd_invalid_json,
        kits_without_cases,
        atlas_without_cases,
        totalseg_without_class_map,
    )
}


def write_manifest_json(d: Path) -> None:  # pragma: no cover - helper for manual runs
    d.joinpath("corpus.json").write_text(json.dumps(sorted(CORPUS)))

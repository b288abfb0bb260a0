"""Dataset import: every layout, real CT numbers against direct nibabel reads, resumability."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from sqlalchemy import func, select

from catalog.volumes import (
    CatalogError,
    healthy_volumes,
    import_dataset,
    list_volumes,
    load_organ_mask,
    load_tumor_mask,
)
from db.models import Dataset, DatasetFormat, TumorKind, Volume, VolumeOrgan
from db.session import session_scope


def _count(path, labels=None):
    data = np.asarray(nib.load(path).dataobj)
    return int(np.isin(data, labels).sum() if labels else (data > 0).sum())


def _write(path, array, affine=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, np.eye(4) if affine is None else affine), path)
    return path


def _ct(shape=(12, 10, 8), seed=0):
    return np.random.default_rng(seed).integers(-1000, 300, size=shape).astype(np.int16)


def test_ircad_manifest_matches_nibabel(shared_data, tmp_path, engine):
    d = shared_data / "ircadb01_patient17"
    manifest = tmp_path / "ircad.csv"
    manifest.write_text(
        "case,ct,organ,organ_mask,tumor_mask\n"
        f"ircad17,{d / 'ct.nii.gz'},liver,{d / 'mask_liver.nii.gz'},"
        f"{d / 'mask_livertumor1.nii.gz'};{d / 'mask_livertumor2.nii.gz'}\n"
    )
    with session_scope(engine) as s:
        report = import_dataset(s, "manifest", manifest)
    assert report.added == ["ircad17"]
    with session_scope(engine) as s:
        vol = s.scalar(select(Volume))
        liver = vol.organ("liver")
        img = nib.load(d / "ct.nii.gz")
        assert vol.shape == list(img.shape) == [512, 512, 119]
        np.testing.assert_allclose(vol.spacing, img.header.get_zooms(), atol=1e-5)
        assert vol.axcodes == "".join(nib.aff2axcodes(img.affine)) == "LPS"
        assert liver.organ_voxels == _count(d / "mask_liver.nii.gz")
        t1 = np.asarray(nib.load(d / "mask_livertumor1.nii.gz").dataobj) > 0
        t2 = np.asarray(nib.load(d / "mask_livertumor2.nii.gz").dataobj) > 0
        assert liver.tumor_voxels == int((t1 | t2).sum())
        assert liver.tumor_kind == TumorKind.REAL and not liver.healthy
        # the mask loader returns the same voxels, in RAS order
        assert int(load_organ_mask(liver).sum()) == liver.organ_voxels
        assert int(load_tumor_mask(liver).sum()) == liver.tumor_voxels
        # 85.6 mL is the larger IRCAD tumor (data README): diameter of that sphere ~ 54.7 mm
        assert liver.tumor_diameter_mm == pytest.approx((6 * 85_600 / np.pi) ** (1 / 3), rel=0.02)


def test_totalseg_multilabel_matches_nibabel(shared_data, engine):
    d = shared_data / "totalseg_example"
    seg = d / "example_seg_fast_force_split.nii.gz"
    with session_scope(engine) as s:
        import_dataset(s, "totalseg", seg, ct=d / "example_ct.nii.gz")
    with session_scope(engine) as s:
        vol = s.scalar(select(Volume))
        assert {o.organ for o in vol.organs} == {"liver", "pancreas", "kidney"}
        assert vol.organ("liver").organ_voxels == _count(seg, [5])
        assert vol.organ("pancreas").organ_voxels == _count(seg, [7])
        assert vol.organ("kidney").organ_voxels == _count(seg, [2, 3, 23, 24])
        assert all(o.healthy for o in vol.organs)
        assert s.scalar(select(Dataset)).meta["tumor_annotations"] is False
        assert [v.case_id for v in healthy_volumes(s, "pancreas")] == ["example_ct"]


def test_totalseg_slab_without_kidneys_skips_them(shared_data, engine):
    d = shared_data / "totalseg_example"
    with session_scope(engine) as s:
        report = import_dataset(
            s, "totalseg", d / "example_seg_dicom.nii.gz", ct=d / "example_ct_dicom.nii.gz"
        )
    assert report.skipped_organs == ["example_ct_dicom:kidney"]


def test_nrrd_manifest_with_label_value(shared_data, tmp_path, engine):
    d = shared_data / "dcmqi_ct3slice"
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "case,ct,organ,organ_mask,organ_label\n"
        f"ct3,{d / 'ct.nrrd'},liver,{d / 'liver_spine_seg.nrrd'},1\n"
    )
    with session_scope(engine) as s:
        import_dataset(s, "manifest", manifest)
        organ = s.scalar(select(VolumeOrgan))
        assert organ.organ_voxels > 0 and organ.mask_labels == [1]


def test_msd_layout(tmp_path, engine):
    root = tmp_path / "Task03_Liver"
    seg = np.zeros((12, 10, 8), np.uint8)
    seg[2:8, 2:8, 2:6] = 1
    seg[3:5, 3:5, 3:5] = 2
    _write(root / "imagesTr" / "liver_0.nii.gz", _ct())
    _write(root / "labelsTr" / "liver_0.nii.gz", seg)
    (root / "dataset.json").write_text(
        json.dumps(
            {
                "labels": {"0": "background", "1": "liver", "2": "cancer"},
                "training": [
                    {"image": "./imagesTr/liver_0.nii.gz", "label": "./labelsTr/liver_0.nii.gz"}
                ],
            }
        )
    )
    with session_scope(engine) as s:
        import_dataset(s, "msd", root)
        organ = s.scalar(select(VolumeOrgan))
        assert organ.organ == "liver" and organ.organ_voxels == 6 * 6 * 4
        assert organ.tumor_voxels == 8 and organ.tumor_kind == TumorKind.REAL


def test_kits_cyst_counts_as_kidney(tmp_path, engine):
    seg = np.zeros((12, 10, 8), np.uint8)
    seg[1:6, 1:6, 1:6] = 1
    seg[2:3, 2:4, 2:4] = 2
    seg[4:5, 4:5, 4:5] = 3
    _write(tmp_path / "kits" / "case_00001" / "imaging.nii.gz", _ct())
    _write(tmp_path / "kits" / "case_00001" / "segmentation.nii.gz", seg)
    with session_scope(engine) as s:
        import_dataset(s, "kits", tmp_path / "kits")
        organ = s.scalar(select(VolumeOrgan))
        assert organ.organ_voxels == 125 and organ.tumor_voxels == 4


def test_atlas_kidney_union_phantom_flag_and_resume(tmp_path, engine):
    root = tmp_path / "cohort"
    left = np.zeros((12, 10, 8), np.uint8)
    left[1:3, 1:3, 1:3] = 1
    right = np.zeros_like(left)
    right[8:10, 1:3, 1:3] = 1
    lesion = np.zeros_like(left)
    lesion[1, 1, 1] = 1
    for case in ("c0", "c1"):
        _write(root / case / "ct.nii.gz", _ct())
        _write(root / case / "segmentations" / "kidney_left.nii.gz", left)
        _write(root / case / "segmentations" / "kidney_right.nii.gz", right)
    _write(root / "c1" / "segmentations" / "kidney_tumor.nii.gz", lesion)
    (root / "cohort.json").write_text(json.dumps({"generator": "turingct phantom"}))
    with session_scope(engine) as s:
        import_dataset(s, "atlas", root)
    with session_scope(engine) as s:
        assert s.scalar(select(Dataset)).format == DatasetFormat.PHANTOM
        kid = {o.volume.case_id: o for o in s.scalars(select(VolumeOrgan))}
        assert kid["c0"].organ_voxels == 16 and kid["c0"].healthy
        assert kid["c1"].tumor_kind == TumorKind.PHANTOM_LESION
        assert [v.case_id for v in healthy_volumes(s, "kidney")] == ["c0"]
        rows = list_volumes(s)
        assert rows[1]["tumor"] == "kidney:phantom_lesion" and rows[0]["shape"] == "12x10x8"
    # re-import: nothing new, nothing duplicated
    _write(root / "c2" / "ct.nii.gz", _ct())
    with session_scope(engine) as s:
        report = import_dataset(s, "atlas", root)
    assert report.added == ["c2"] and report.skipped_existing == ["c0", "c1"]
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Volume.id))) == 3


def test_organ_filter_and_bad_organ(tmp_path, engine):
    with session_scope(engine) as s, pytest.raises(CatalogError, match="--organ: must be"):
        import_dataset(s, "atlas", tmp_path, organs=["lung"])


def test_training_cases_are_the_non_synthetic_volumes_with_the_organ(tmp_path, db_url, engine):
    """`turingct train --from-catalog`: catalog/ hands synth_backend plain case records (mask
    unions and tumor files included), never a synthetic volume, and says what to do when the
    catalog has none."""
    from catalog.training import cases_from_catalog, training_cases
    from db.models import Origin
    from synth_backend.training.data import DataError

    root = tmp_path / "cohort"
    left = np.zeros((12, 10, 8), np.uint8)
    left[1:3, 1:3, 1:3] = 1
    for case in ("c0", "c1"):
        _write(root / case / "ct.nii.gz", _ct())
        _write(root / case / "segmentations" / "kidney_left.nii.gz", left)
        _write(root / case / "segmentations" / "kidney_right.nii.gz", left[::-1].copy())
    _write(root / "c1" / "segmentations" / "kidney_tumor.nii.gz", left)
    with session_scope(engine) as s:
        import_dataset(s, "atlas", root)
    with session_scope(engine) as s:
        s.scalars(select(Volume).where(Volume.case_id == "c0")).one().origin = Origin.SYNTHETIC
    with session_scope(engine) as s:
        cases = training_cases(s, "kidney")
    assert [c.name.split("/")[1] for c in cases] == ["c1"]
    seg = root / "c1" / "segmentations"
    assert {p.name for p in cases[0].organ} == {"kidney_left.nii.gz", "kidney_right.nii.gz"}
    assert cases[0].tumor == (seg / "kidney_tumor.nii.gz",)
    assert cases[0].ct == root / "c1" / "ct.nii.gz"
    assert cases_from_catalog(db_url, "kidney") == cases
    with pytest.raises(DataError, match="no non-synthetic volume with a liver mask"):
        cases_from_catalog(db_url, "liver")

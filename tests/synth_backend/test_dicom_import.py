"""DICOM import: CT series + SEG / RTSTRUCT built at test time -> NIfTI -> catalog, with the
voxels, geometry and masks checked against the arrays they were made from."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest
from sqlalchemy import func, select

from catalog.volumes import import_dataset
from db.models import DatasetFormat, TumorKind, Volume
from db.session import session_scope
from synth_backend.dicom.convert import CONVERSION_VERSION, prepare
from synth_backend.dicom.errors import DicomError
from synth_backend.dicom.labels import parse_label_map
from synth_backend.io import load_volume, sha256_file
from tests import dicom_factory as fx


def _ras(array, affine):
    """An (x, y, z) array with its affine, reoriented to RAS like load_volume does."""
    ornt = nib.orientations.io_orientation(affine)
    return nib.orientations.apply_orientation(array, ornt), affine @ nib.orientations.inv_ornt_aff(
        ornt, array.shape
    )


def _import(engine, path, tmp_path, **kw):
    with session_scope(engine) as s:
        return import_dataset(s, "dicom", path, convert_dir=tmp_path / "converted", **kw)


def test_ct_with_seg_imports_with_exact_voxels_masks_and_provenance(tmp_path, engine):
    ct, liver, tumor, affine, source = fx.write_case(tmp_path / "in")
    report = _import(engine, tmp_path / "in", tmp_path)
    assert report.added == [source[0].SeriesInstanceUID]
    with session_scope(engine) as s:
        vol = s.scalar(select(Volume))
        assert vol.dataset.format == DatasetFormat.DICOM
        organ = vol.organ("liver")
        assert organ.tumor_kind == TumorKind.REAL
        assert organ.tumor_voxels == int(tumor.sum())
        assert organ.organ_voxels == int((liver | tumor).sum())
        assert vol.meta["dicom"]["study_instance_uid"] == source[0].StudyInstanceUID
        image = load_volume(vol.ct_path)
        want, want_affine = _ras(ct, affine)
        np.testing.assert_array_equal(image.array, want)
        np.testing.assert_allclose(image.affine, want_affine, atol=1e-4)
        assert nib.load(vol.ct_path).get_data_dtype() == np.int16
        labels = load_volume(organ.mask_paths[0], "mask").array
        np.testing.assert_array_equal(labels == 2, _ras(tumor, affine)[0])
        np.testing.assert_array_equal(labels > 0, _ras(liver | tumor, affine)[0])
    prov = json.loads(next((tmp_path / "converted").glob("*/*/provenance.json")).read_text())
    assert prov["conversion_version"] == CONVERSION_VERSION
    assert prov["series_instance_uid"] == source[0].SeriesInstanceUID
    assert len(prov["files"]) == 20
    first = prov["files"][0]
    assert first["sha256"] == sha256_file(first["path"])
    assert prov["masks"][0]["kind"] == "SEG"
    assert {v["target"] for v in prov["masks"][0]["segments"].values()} == {"liver", "liver:tumor"}


def test_rtstruct_contours_rasterize_to_the_original_masks(tmp_path, engine):
    ct, liver, tumor, affine, _ = fx.write_case(
        tmp_path / "in", seg=False, rtstruct=True, labels=("LIVER", "GTV liver tumor")
    )
    _import(engine, tmp_path / "in", tmp_path)
    with session_scope(engine) as s:
        organ = s.scalar(select(Volume)).organ("liver")
        labels = load_volume(organ.mask_paths[0], "mask").array
    np.testing.assert_array_equal(labels == 2, _ras(tumor, affine)[0])
    np.testing.assert_array_equal(labels > 0, _ras(liver | tumor, affine)[0])


def test_geometry_matches_simpleitk_reading_the_same_series(tmp_path):
    import SimpleITK as sitk

    fx.write_case(tmp_path / "in", seg=False)
    record = prepare(tmp_path / "in", tmp_path / "out").records[0]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "in" / "ct")))
    ref = reader.Execute()
    ours = sitk.ReadImage(str(record.ct_path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(ours), sitk.GetArrayFromImage(ref))
    np.testing.assert_allclose(ours.GetOrigin(), ref.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(ours.GetSpacing(), ref.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(ours.GetDirection(), ref.GetDirection(), atol=1e-6)


def test_several_series_localizer_and_dose_report(tmp_path, engine):
    fx.write_case(tmp_path / "in")
    ct2, _, _, affine = fx.phantom(seed=1)
    second = fx.ct_datasets(ct2, affine, SeriesNumber=3)
    fx.save(second, tmp_path / "in" / "other")
    scout = fx.ct_datasets(ct2[:, :, :2], affine, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    fx.save(scout, tmp_path / "in" / "scout")
    sr = pydicom.Dataset()
    sr.file_meta = pydicom.dataset.FileMetaDataset()
    sr.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    sr.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"
    sr.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    sr.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR
    sr.SOPInstanceUID = sr.file_meta.MediaStorageSOPInstanceUID
    sr.SeriesInstanceUID, sr.Modality = pydicom.uid.generate_uid(), "SR"
    sr.save_as(tmp_path / "in" / "dose.dcm", enforce_file_format=True)
    (tmp_path / "in" / "README.txt").write_text("exported from PACS")
    report = _import(engine, tmp_path / "in", tmp_path)
    assert sorted(report.added) == sorted(
        [
            second[0].SeriesInstanceUID,
            fx.read(next((tmp_path / "in" / "ct").iterdir())).SeriesInstanceUID,
        ]
    )
    notes = " ".join(report.notes)
    assert "localizer" in notes and "dose report" in notes and "non-DICOM" in notes


def test_missing_slice_is_refused_with_the_gap_or_resampled_on_request(tmp_path, engine):
    ct, _, _, affine, _ = fx.write_case(tmp_path / "in", seg=False)
    (tmp_path / "in" / "ct" / "0007").unlink()
    with pytest.raises(DicomError, match=r"gap of 5\.00 mm.*spacing is 2\.50 mm.*1 slice"):
        _import(engine, tmp_path / "in", tmp_path)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Volume.id))) == 0
    record = prepare(tmp_path / "in", tmp_path / "out", resample_nonuniform=True).records[0]
    got = load_volume(record.ct_path).array
    want = _ras(ct.astype(np.float32), affine)[0]
    assert got.shape == want.shape
    np.testing.assert_array_equal(np.delete(got, 7, axis=2), np.delete(want, 7, axis=2))
    np.testing.assert_array_equal(got[:, :, 7], np.rint((want[:, :, 6] + want[:, :, 8]) / 2))


def test_gantry_tilt_is_corrected_back_onto_the_orthogonal_grid(tmp_path):
    ct, _, _, affine = fx.phantom()
    tilted = fx.ct_datasets(ct, affine)
    # each slice steps 1 pixel (0.8 mm) along the column direction: a tilt of atan(0.8/2.5)
    for k, ds in enumerate(tilted):
        ipp = np.asarray(ds.ImagePositionPatient, float)
        ipp[1] += 0.8 * k
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
        ds.PixelData = (
            np.ascontiguousarray(np.roll(ct[:, :, k].T, -k, axis=0)).astype("<i2").tobytes()
        )
    fx.save(tilted, tmp_path / "in")
    prepared = prepare(tmp_path / "in", tmp_path / "out")
    assert any("gantry tilt 17.7" in n for n in prepared.notes)
    got = load_volume(prepared.records[0].ct_path).array
    want = _ras(ct, affine)[0]
    # rows that stayed inside the field of view come back exactly
    keep = np.ones(ct.shape[1], bool)
    keep[:20] = False  # slice k lost its first k rows to the tilt (np.roll wrapped them)
    rows = _ras(np.broadcast_to(keep[None, :, None], ct.shape), affine)[0]
    np.testing.assert_array_equal(got[rows], want[rows])


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEGLSLossless"])
def test_compressed_series_decodes_and_unknown_syntax_is_named(tmp_path, syntax):
    from pydicom.uid import HTJ2KLossless

    ct, _, _, affine = fx.phantom()
    datasets = fx.ct_datasets(ct, affine)
    for ds in datasets:
        ds.compress(getattr(pydicom.uid, syntax))
    fx.save(datasets, tmp_path / "rle")
    got = load_volume(prepare(tmp_path / "rle", tmp_path / "out").records[0].ct_path).array
    np.testing.assert_array_equal(got, _ras(ct, affine)[0])
    for path in (tmp_path / "rle").iterdir():
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = HTJ2KLossless
        ds.save_as(path)
    with pytest.raises(DicomError, match=r"compressed as High-Throughput JPEG 2000"):
        prepare(tmp_path / "rle", tmp_path / "out2")


def test_seg_of_an_absent_series_is_refused_naming_its_uid(tmp_path, engine):
    _, _, _, _, source = fx.write_case(tmp_path / "in")
    shutil.rmtree(tmp_path / "in" / "ct")
    fx.write_case(tmp_path / "in" / "other", seg=False, seed=1)
    uid = source[0].SeriesInstanceUID
    with pytest.raises(DicomError, match=rf"seg\.dcm: SEG references CT series {uid}"):
        _import(engine, tmp_path / "in", tmp_path)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Volume.id))) == 0


def test_seg_of_another_series_is_refused(tmp_path):
    ct, liver, _, affine = fx.phantom()
    source = fx.ct_datasets(ct, affine)
    fx.seg_dataset(source, {"Liver": liver}).save_as(tmp_path / "seg.dcm", enforce_file_format=True)
    # the same series UID, re-reconstructed: new instances, shifted slices
    other = fx.ct_datasets(ct, affine)
    for ds_new, ds_old in zip(other, source, strict=True):
        ds_new.SeriesInstanceUID = ds_old.SeriesInstanceUID
        ipp = np.asarray(ds_old.ImagePositionPatient, float) + [0, 0, 1.25]
        ds_new.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
    fx.save(other, tmp_path / "ct")
    with pytest.raises(DicomError, match=r"seg\.dcm: SEG frame 1 .* lies on no slice"):
        prepare(tmp_path, tmp_path / "out")


@pytest.mark.parametrize("damage", ["not_dicom", "truncated_pixels", "truncated_header"])
def test_bad_files_give_one_line_naming_the_file_and_register_nothing(tmp_path, engine, damage):
    fx.write_case(tmp_path / "in")
    victim = tmp_path / "in" / "ct" / "0003"
    data = victim.read_bytes()
    if damage == "not_dicom":
        victim = victim.rename(victim.with_suffix(".dcm"))
        victim.write_bytes(b"this is not DICOM" * 20)
    elif damage == "truncated_pixels":
        victim.write_bytes(data[: len(data) - 3000])
    else:
        victim.write_bytes(data[:400])
    with pytest.raises(DicomError) as err:
        _import(engine, tmp_path / "in", tmp_path)
    message = str(err.value)
    assert str(victim) in message and "\n" not in message and "; " in message
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(Volume.id))) == 0


def test_label_map_names_unknown_segments_and_ambiguous_tumors_are_refused(tmp_path, engine):
    fx.write_case(tmp_path / "in", labels=("Segment_A", "Segment_B"))
    with pytest.raises(DicomError, match=r"is a tumor of an unknown organ \(no organ segmented\)"):
        _import(engine, tmp_path / "in", tmp_path)  # B's property type is Neoplasm, A unknown
    report = _import(
        engine,
        tmp_path / "in",
        tmp_path,
        label_map=parse_label_map(["Segment_A=liver", "segment b=liver:tumor"]),
    )
    assert len(report.added) == 1
    with session_scope(engine) as s:
        assert s.scalar(select(Volume)).organ("liver").tumor_kind == TumorKind.REAL


def test_label_map_file_and_bad_target(tmp_path):
    good = tmp_path / "map.json"
    good.write_text(json.dumps({"Mass": "pancreas:tumor"}))
    assert parse_label_map([str(good)]) == {"mass": "pancreas:tumor"}
    with pytest.raises(DicomError, match=r"target of 'Mass' must be one of"):
        parse_label_map(["Mass=spleen"])


def test_reimport_adds_nothing_and_reuses_the_conversion(tmp_path, engine):
    fx.write_case(tmp_path / "in")
    _import(engine, tmp_path / "in", tmp_path)
    ct_file = next((tmp_path / "converted").glob("*/*/ct.nii.gz"))
    mtime = ct_file.stat().st_mtime_ns
    report = _import(engine, tmp_path / "in", tmp_path)
    assert report.added == [] and len(report.skipped_existing) == 1
    assert ct_file.stat().st_mtime_ns == mtime


def test_cli_import_prints_notes_and_counts(tmp_path, monkeypatch, capsys, db_url):
    from turingct.cli import main

    fx.write_case(tmp_path / "in")
    (tmp_path / "in" / "notes.txt").write_text("x")
    monkeypatch.setenv("TURINGCT_DATA_DIR", str(tmp_path / "data"))
    assert main(["data", "import", "--format", "dicom", str(tmp_path / "in"), "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert "1 case(s) added" in out and "note: ignored 1 non-DICOM file" in out
    assert list((tmp_path / "data" / "dicom").glob("*/*/ct.nii.gz"))
    assert (
        main(["data", "import", "--format", "dicom", str(tmp_path / "missing"), "--db", db_url])
        == 2
    )
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.realdata
def test_real_ct_round_trips_through_dicom_with_its_liver_as_seg(shared_data, tmp_path, engine):
    d = shared_data / "totalseg_example"
    src = load_volume(d / "example_ct_dicom.nii.gz")
    seg = load_volume(d / "example_seg_dicom.nii.gz", "mask")
    source_ct = nib.load(d / "example_ct_dicom.nii.gz")
    raw = np.asarray(source_ct.dataobj).astype(np.int16)
    source = fx.ct_datasets(raw, source_ct.affine)
    fx.save(source, tmp_path / "in" / "ct")
    liver_raw = np.asarray(nib.load(d / "example_seg_dicom.nii.gz").dataobj) == 5
    fx.seg_dataset(source, {"liver": liver_raw}).save_as(
        tmp_path / "in" / "seg.dcm", enforce_file_format=True
    )
    _import(engine, tmp_path / "in", tmp_path)
    with session_scope(engine) as s:
        vol = s.scalar(select(Volume))
        back = load_volume(vol.ct_path)
        liver = load_volume(vol.organ("liver").mask_paths[0], "mask").array > 0
        assert vol.organ("liver").tumor_kind == TumorKind.NONE
    np.testing.assert_array_equal(back.array, src.array)
    np.testing.assert_allclose(back.affine, src.affine, atol=1e-3)
    np.testing.assert_array_equal(liver, seg.array == 5)


def test_tilted_series_seg_and_rtstruct_land_on_the_same_corrected_voxels(tmp_path):
    ct, liver, tumor, affine = fx.phantom()
    tilted = fx.ct_datasets(ct, affine)
    for k, ds in enumerate(tilted):
        ipp = np.asarray(ds.ImagePositionPatient, float)
        ipp[1] += 0.4 * k  # half a pixel per slice: a 9.1 degree tilt
        ds.ImagePositionPatient = [f"{v:.4f}" for v in ipp]
    fx.save(tilted, tmp_path / "seg" / "ct")
    fx.save(tilted, tmp_path / "rt" / "ct")
    masks = {"Liver": liver | tumor, "Neoplasm": tumor}
    fx.seg_dataset(tilted, masks).save_as(tmp_path / "seg" / "seg.dcm", enforce_file_format=True)
    fx.rtstruct_dataset(tilted, masks).save_as(tmp_path / "rt" / "rt.dcm", enforce_file_format=True)
    from_seg = prepare(tmp_path / "seg", tmp_path / "out").records[0]
    from_rt = prepare(tmp_path / "rt", tmp_path / "out").records[0]
    seg_labels = load_volume(from_seg.organs[0].mask_paths[0], "mask").array
    rt_labels = load_volume(from_rt.organs[0].mask_paths[0], "mask").array
    # SEG frames are shifted with the CT (nearest neighbour), RTSTRUCT contours are drawn on the
    # corrected grid directly: the two routes agree up to the half-pixel rounding at edges
    for label in (1, 2):
        a, b = seg_labels >= label, rt_labels >= label
        assert a.sum() > 100 and (a ^ b).sum() / a.sum() < 0.08, ((a ^ b).sum(), a.sum())
    assert load_volume(from_seg.ct_path).shape == (64, 64, 20)


def test_duplicate_slice_positions_are_refused(tmp_path):
    ct, _, _, affine = fx.phantom()
    datasets = fx.ct_datasets(ct, affine)
    datasets[5].ImagePositionPatient = datasets[4].ImagePositionPatient
    fx.save(datasets, tmp_path / "in")
    with pytest.raises(DicomError, match=r"2 slices share a position .*several acquisitions"):
        prepare(tmp_path / "in", tmp_path / "out")


def test_organ_filter_keeps_only_series_with_that_organ(tmp_path, engine):
    fx.write_case(tmp_path / "in" / "a")
    fx.write_case(tmp_path / "in" / "b", seg=False, seed=1)
    report = _import(engine, tmp_path / "in", tmp_path, organs=["liver"])
    assert len(report.added) == 1
    assert _import(engine, tmp_path / "in", tmp_path, organs=["kidney"], name="k").added == []


@pytest.mark.realdata
def test_real_liver_tumors_round_trip_through_rtstruct_exactly(shared_data, tmp_path, engine):
    """IRCAD patient 17 (20 slices through both tumors, built in tmp_path only: the license
    forbids shipping derivatives): manual liver and tumor masks as RTSTRUCT contours come
    back voxel for voxel, holes and all."""
    d = shared_data / "ircadb01_patient17"
    img = nib.load(d / "ct.nii.gz")
    z = slice(84, 104)
    ct = np.asarray(img.dataobj)[:, :, z].astype(np.int16)
    affine = img.affine.copy()
    affine[:3, 3] = img.affine[:3, :3] @ [0, 0, z.start] + img.affine[:3, 3]
    liver = np.asarray(nib.load(d / "mask_liver.nii.gz").dataobj)[:, :, z] > 0
    tumor = np.zeros_like(liver)
    for name in ("mask_livertumor1.nii.gz", "mask_livertumor2.nii.gz"):
        tumor |= np.asarray(nib.load(d / name).dataobj)[:, :, z] > 0
    source = fx.ct_datasets(ct, affine)
    fx.save(source, tmp_path / "in" / "ct")
    fx.rtstruct_dataset(source, {"Liver": liver, "Tumor": tumor}).save_as(
        tmp_path / "in" / "rtstruct.dcm", enforce_file_format=True
    )
    _import(engine, tmp_path / "in", tmp_path)
    with session_scope(engine) as s:
        organ = s.scalar(select(Volume)).organ("liver")
        labels = load_volume(organ.mask_paths[0], "mask").array
        assert organ.tumor_kind == TumorKind.REAL and organ.tumor_diameter_mm > 20
        back = load_volume(s.scalar(select(Volume)).ct_path).array
    np.testing.assert_array_equal(back, _ras(ct, affine)[0])
    np.testing.assert_array_equal(labels == 2, _ras(tumor, affine)[0])
    np.testing.assert_array_equal(labels > 0, _ras(liver | tumor, affine)[0])


def test_fractional_seg_is_read_at_one_half(tmp_path):
    ct, liver, tumor, affine = fx.phantom()
    source = fx.ct_datasets(ct, affine)
    fx.save(source, tmp_path / "in" / "ct")
    rng = np.random.default_rng(0)
    soft = np.where(
        liver | tumor, rng.uniform(0.5, 1.0, ct.shape), rng.uniform(0.0, 0.49, ct.shape)
    ).astype(np.float32)
    fx.seg_dataset(source, {"Liver": soft}, fractional=True).save_as(
        tmp_path / "in" / "seg.dcm", enforce_file_format=True
    )
    record = prepare(tmp_path / "in", tmp_path / "out").records[0]
    labels = load_volume(record.organs[0].mask_paths[0], "mask").array
    # 8-bit fractional storage rounds p to k/255: only values within 1/255 of 0.5 may flip
    near = np.abs(_ras(soft, affine)[0] - 0.5) < 1 / 255
    np.testing.assert_array_equal((labels > 0)[~near], _ras(liver | tumor, affine)[0][~near])


def test_seg_drawn_on_a_localizer_is_refused_saying_so(tmp_path):
    ct, liver, _, affine = fx.phantom()
    fx.write_case(tmp_path / "ct", seg=False)
    scout = fx.ct_datasets(ct[:, :, :3], affine, ImageType=["ORIGINAL", "PRIMARY", "LOCALIZER"])
    fx.save(scout, tmp_path / "scout")
    fx.seg_dataset(scout, {"Liver": liver[:, :, :3]}).save_as(
        tmp_path / "seg.dcm", enforce_file_format=True
    )
    with pytest.raises(
        DicomError,
        match=rf"references series {scout[0].SeriesInstanceUID}, "
        "which is a localizer",
    ):
        prepare(tmp_path, tmp_path / "out")

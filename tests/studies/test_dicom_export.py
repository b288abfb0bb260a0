"""Blinded study -> DICOM: identical headers except UIDs and pixels, voxels equal to the blinded
NIfTI, the study's window as VOI, the audit over the DICOM headers; DICOM cases in a study."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest

from db.models import Study
from db.session import session_scope
from studies.accounts import OPERATOR
from studies.dicom_export import check_identical_headers, export_study_dicom, header_signature
from studies.errors import StudyError
from synth_backend.dicom.convert import prepare
from synth_backend.io import load_volume


def _read_cases(out):
    return {
        d.name: [pydicom.dcmread(p) for p in sorted(d.glob("*.dcm"))]
        for d in sorted(out.iterdir())
        if d.is_dir()
    }


def test_export_is_blinded_and_voxel_exact(study, tmp_path):
    engine, study_id = study
    with session_scope(engine) as s:
        export = export_study_dicom(s, OPERATOR, study_id, tmp_path / "dcm")
        blinded = {c.code: c.blinded_path for c in s.get(Study, study_id).cases}
    cases = _read_cases(tmp_path / "dcm")
    assert set(cases) == set(blinded) and export.n_cases == 6
    signatures = {code: [header_signature(ds) for ds in dss] for code, dss in cases.items()}
    first = next(iter(signatures.values()))
    assert all(sig == first for sig in signatures.values())
    roots = set()
    for code, datasets in cases.items():
        ds = datasets[0]
        assert not any(e.tag.is_private for d in datasets for e in d.iterall())
        assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (90.0, 150.0)  # "liver"
        assert str(ds.PatientName) == "TURINGCT^BLINDED" and ds.PatientIdentityRemoved == "YES"
        assert list(map(float, ds.ImageOrientationPatient)) == [1, 0, 0, 0, 1, 0]
        roots.add(ds.StudyInstanceUID.split(".")[2])
        # the series read back by our own importer equals the blinded NIfTI, voxel for voxel
        record = prepare(tmp_path / "dcm" / code, tmp_path / "back").records[0]
        got, want = load_volume(record.ct_path), load_volume(blinded[code])
        np.testing.assert_array_equal(got.array, want.array)
        np.testing.assert_allclose(got.affine, want.affine, atol=1e-4)
    assert len(roots) == 1  # one random root per export
    uids = [ds.SOPInstanceUID for dss in cases.values() for ds in dss]
    assert len(set(uids)) == len(uids)
    with open(tmp_path / "dcm" / "cases.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["code"] for r in rows} == set(blinded)
    assert set(rows[0]) == {"code", "study_instance_uid", "series_instance_uid", "folder"}


def test_dicom_header_audit_is_stored_and_near_chance(study, tmp_path):
    engine, study_id = study
    with session_scope(engine) as s:
        export = export_study_dicom(s, OPERATOR, study_id, tmp_path / "dcm")
    with session_scope(engine) as s:
        stored = s.get(Study, study_id).audit["dicom"]
    assert stored["n_real"] == 3 and stored["n_synthetic"] == 3
    # identical headers: no header feature can separate the arms
    assert not any(name.startswith("dcm_") for name, _ in export.audit.top_features)


def test_header_check_catches_a_differing_field(study, tmp_path):
    engine, study_id = study
    with session_scope(engine) as s:
        export_study_dicom(s, OPERATOR, study_id, tmp_path / "dcm")
    cases = _read_cases(tmp_path / "dcm")
    check_identical_headers(cases)
    victim = list(cases)[-1]
    cases[victim][3].SliceThickness = "2.0"
    with pytest.raises(StudyError, match=rf"case {victim}: header field\(s\) \['SliceThickness'\]"):
        check_identical_headers(cases)
    cases[victim][3].SliceThickness = cases[list(cases)[0]][3].SliceThickness
    cases[victim][0].add_new(0x00091001, "LO", "vendor")
    with pytest.raises(StudyError, match="private tags"):
        check_identical_headers(cases)


def test_export_refuses_a_non_empty_folder_and_leaves_it(study, tmp_path):
    engine, study_id = study
    (tmp_path / "dcm").mkdir()
    (tmp_path / "dcm" / "keep.txt").write_text("mine")
    with session_scope(engine) as s, pytest.raises(StudyError, match="not an empty folder"):
        export_study_dicom(s, OPERATOR, study_id, tmp_path / "dcm")
    assert [p.name for p in (tmp_path / "dcm").iterdir()] == ["keep.txt"]


def test_dicom_series_with_seg_enters_a_study_and_exports(engine, db_url, tmp_path, capsys):
    from catalog.volumes import import_dataset
    from studies.admin import create_study
    from tests import dicom_factory as fx
    from tests.studies._catalog import build_catalog, spec_dict
    from turingct.cli import main

    for seed in range(3):
        fx.write_case(
            tmp_path / "pacs" / f"p{seed}", seed=seed, shape=(40, 40, 12), spacing=(1.0, 1.0, 2.0)
        )
    with session_scope(engine) as s:
        report = import_dataset(s, "dicom", tmp_path / "pacs", convert_dir=tmp_path / "conv")
        assert len(report.added) == 3
        build_catalog(s, tmp_path / "cat", n_real=0, n_synthetic=3)
    with session_scope(engine) as s:
        st = create_study(
            s,
            spec_dict(name="dicom-study"),
            actor=OPERATOR,
            export_root=tmp_path / "exp",
            progress=False,
        )
        assert sorted(c.arm.value for c in st.cases) == ["real"] * 3 + ["synthetic"] * 3
        assert {c.volume.dataset.format.value for c in st.cases if c.arm.value == "real"} == {
            "dicom"
        }
    assert (
        main(
            ["study", "export-dicom", "dicom-study", "--out", str(tmp_path / "out"), "--db", db_url]
        )
        == 0
    )
    assert "6 cases" in capsys.readouterr().out
    assert len(list((tmp_path / "out").glob("*/*.dcm"))) == 6 * 12

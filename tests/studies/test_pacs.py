"""A real Orthanc PACS (DICOMweb): push an exported study, pull every case back through the
DICOM import, and compare voxels and headers with what was sent."""

from __future__ import annotations

import socket

import numpy as np
import pydicom
import pytest
from sqlalchemy import select

from db.models import Dataset, Study
from db.session import session_scope
from studies.accounts import OPERATOR
from studies.dicom_export import header_signature, push_study
from synth_backend.dicom.errors import DicomError
from synth_backend.dicom.web import pull_study
from synth_backend.io import load_volume
from turingct.cli import main


@pytest.mark.orthanc
def test_push_then_pull_gives_back_identical_headers_and_voxels(
    study, orthanc_url, tmp_path, monkeypatch, capsys, db_url
):
    engine, study_id = study
    with session_scope(engine) as s:
        export = push_study(s, OPERATOR, study_id, orthanc_url, tmp_path / "sent")
        blinded = {c.code: c.blinded_path for c in s.get(Study, study_id).cases}
    sent = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in export.files}
    monkeypatch.setenv("TURINGCT_DATA_DIR", str(tmp_path / "data"))
    for code, study_uid in export.study_uids.items():
        assert (
            main(
                [
                    "data",
                    "import",
                    "--format",
                    "dicom",
                    "--pacs",
                    orthanc_url,
                    "--study-uid",
                    study_uid,
                    "--db",
                    db_url,
                ]
            )
            == 0
        )
        assert "1 case(s) added" in capsys.readouterr().out
        pulled = sorted((tmp_path / "data" / "dicom" / "pacs" / study_uid).glob("*/*.dcm"))
        assert len(pulled) == len([p for p in export.files if p.parent.name == code])
        for path in pulled:
            back = pydicom.dcmread(path)
            original = sent[back.SOPInstanceUID]
            assert header_signature(back) == header_signature(original)
            assert back.StudyInstanceUID == original.StudyInstanceUID
            np.testing.assert_array_equal(back.pixel_array, original.pixel_array)
        with session_scope(engine) as s:
            ds = s.scalar(select(Dataset).where(Dataset.name == f"pacs-{study_uid}"))
            volume = load_volume(ds.volumes[0].ct_path)
        want = load_volume(blinded[code])
        np.testing.assert_array_equal(volume.array, want.array)
        np.testing.assert_allclose(volume.affine, want.affine, atol=1e-4)


@pytest.mark.orthanc
def test_unknown_study_on_the_pacs_is_one_line(orthanc_url, tmp_path):
    with pytest.raises(DicomError, match=r"study 1\.2\.3\.4 not found on the PACS"):
        pull_study(orthanc_url, "1.2.3.4", tmp_path)


def test_unreachable_pacs_names_the_url(study, tmp_path, capsys, db_url):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/dicom-web"
    assert (
        main(
            [
                "data",
                "import",
                "--format",
                "dicom",
                "--pacs",
                url,
                "--study-uid",
                "1.2.3",
                "--db",
                db_url,
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith(f"error: {url}: cannot reach the PACS") and err.count("\n") == 1
    assert main(["study", "push", "t1", "--pacs", url, "--db", db_url]) == 2
    assert f"{url}: cannot reach the PACS" in capsys.readouterr().err
    dimse = url.replace("http://", "dicom://PACS@").removesuffix("/dicom-web")
    assert main(["study", "push", "t1", "--pacs", dimse, "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith(f"error: {dimse}: association aborted or unreachable")
        and err.count("\n") == 1
    )
    assert main(["study", "push", "t1", "--pacs", "ftp://x", "--db", db_url]) == 2
    assert "--pacs must be a DICOMweb URL" in capsys.readouterr().err


@pytest.mark.orthanc
def test_dimse_c_store_then_c_get_round_trip(study, orthanc, tmp_path, engine):
    from catalog.volumes import import_dataset
    from synth_backend.dicom.pacs import pull

    _, study_id = study
    with session_scope(engine) as s:
        export = push_study(s, OPERATOR, study_id, orthanc["dimse"], tmp_path / "sent")
        blinded = {c.code: c.blinded_path for c in s.get(Study, study_id).cases}
    sent = {pydicom.dcmread(p).SOPInstanceUID: pydicom.dcmread(p) for p in export.files}
    code, study_uid = sorted(export.study_uids.items())[0]
    folder = pull(f"{orthanc['dimse']}?calling=TURINGCT", study_uid, tmp_path / "pulled")
    pulled = sorted(folder.glob("*.dcm"))
    assert len(pulled) == len([p for p in export.files if p.parent.name == code])
    for path in pulled:  # the file meta group is the receiver's (pynetdicom); the data set is
        back = pydicom.dcmread(path)  # what was sent, element for element
        original = sent[back.SOPInstanceUID]
        back.file_meta = original.file_meta = pydicom.dataset.FileMetaDataset()
        assert header_signature(back) == header_signature(original)
    with session_scope(engine) as s:
        report = import_dataset(s, "dicom", folder, convert_dir=tmp_path / "conv")
        assert len(report.added) == 1
        volume = load_volume(
            s.scalar(select(Dataset).where(Dataset.name == study_uid)).volumes[0].ct_path
        )
    np.testing.assert_array_equal(volume.array, load_volume(blinded[code]).array)


@pytest.mark.orthanc
def test_dimse_refusals_are_one_line(orthanc, tmp_path):
    from synth_backend.dicom.pacs import pull

    with pytest.raises(DicomError, match=r"C-GET of study 1\.2\.3\.4 returned status"):
        pull(orthanc["dimse"], "1.2.3.4", tmp_path)
    port = orthanc["dimse"].rsplit(":", 1)[1]
    with pytest.raises(DicomError, match=r"WRONGAET@.*: association rejected; check"):
        pull(f"dicom://WRONGAET@127.0.0.1:{port}", "1.2.3.4", tmp_path)
    with pytest.raises(DicomError, match=r"allows C-GET from AE 'STRANGER'"):
        pull(f"dicom://ORTHANC@127.0.0.1:{port}?calling=STRANGER", "1.2.3.4", tmp_path)
    with pytest.raises(DicomError, match=r"must look like dicom://AET@host:port"):
        pull("dicom://nohost", "1.2.3", tmp_path)

"""DICOM errors are InputErrors: '<file, series or URL>: <problem>; <fix>', driven through the
public functions with bad inputs (issue 15). Messages that had all three parts are unchanged;
the few that lacked the fix gained one."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from core.errors import InputError
from synth_backend.dicom import pacs
from synth_backend.dicom.convert import hu_pixels, prepare
from synth_backend.dicom.errors import DicomError
from synth_backend.dicom.labels import TARGETS, parse_label_map
from synth_backend.dicom.scan import scan
from synth_backend.dicom.web import pull_study
from synth_backend.dicom.write import ct_series
from tests import dicom_factory as fx


def _shape(exc: DicomError) -> DicomError:
    """The checks every DICOM error passes: an InputError with its three parts, one line."""
    assert isinstance(exc, InputError)
    assert str(exc.where) and exc.problem and exc.fix
    assert str(exc) == f"{exc.where}: {exc.problem}; {exc.fix}"
    assert "\n" not in str(exc)
    return exc


def test_missing_import_path_is_unchanged(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DicomError) as err:
        scan(missing)
    assert _shape(err.value).where == missing
    assert str(err.value) == f"{missing}: does not exist; check the path"


def test_folder_without_dicom_files_is_unchanged(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    with pytest.raises(DicomError) as err:
        prepare(tmp_path / "in", tmp_path / "out")
    assert str(_shape(err.value)) == (
        f"{tmp_path / 'in'}: no DICOM files found (1 other files); "
        "pass the folder that holds the exported series"
    )


def test_duplicate_slices_name_the_series_and_the_fix(tmp_path):
    ct, _, _, affine = fx.phantom()
    datasets = fx.ct_datasets(ct, affine)
    datasets[3].ImagePositionPatient = list(datasets[2].ImagePositionPatient)
    fx.save(datasets, tmp_path / "in")
    with pytest.raises(DicomError) as err:
        prepare(tmp_path / "in", tmp_path / "out")
    exc = _shape(err.value)
    assert exc.problem.startswith("2 slices share a position")
    assert exc.fix == (
        "the series holds several acquisitions or duplicates: remove the duplicates or split it"
    )


def test_colour_slice_gains_a_fix(tmp_path):
    ct, _, _, affine = fx.phantom()
    ds = fx.ct_datasets(ct[:, :, :1], affine)[0]
    ds.SamplesPerPixel = 3
    (path,) = fx.save([ds], tmp_path)
    with pytest.raises(DicomError) as err:
        hu_pixels(path, (int(ds.Rows), int(ds.Columns)))
    assert str(_shape(err.value)) == (
        f"{path}: has 3 samples per pixel (colour); a CT slice has one: this is not an "
        "original CT image; import the original CT series from the scanner or PACS"
    )


def test_label_map_errors(tmp_path):
    listed = tmp_path / "map.json"
    listed.write_text(json.dumps(["Mass", "liver:tumor"]))
    with pytest.raises(DicomError) as err:
        parse_label_map([str(listed)])
    assert str(_shape(err.value)) == (
        f"{listed}: --label-map JSON must be an object of name -> target; "
        'write it as {"segment name": "liver:tumor", ...}'
    )
    with pytest.raises(DicomError) as err:
        parse_label_map(["Mass=spleen"])
    assert str(_shape(err.value)) == (
        f"--label-map: target of 'Mass' must be one of {TARGETS}, got 'spleen'; fix the label map"
    )


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "ftp://x",
            "--pacs must be a DICOMweb URL (http://host:8042/dicom-web) or a DIMSE address "
            "(dicom://AET@host:4242)",
        ),
        (
            "dicom://pacs.example.org",
            "a DIMSE address must look like dicom://AET@host:port "
            "(e.g. dicom://ORTHANC@pacs.example.org:4242)",
        ),
        # urllib's ValueError for a bad port used to escape as a traceback
        *(
            (
                url,
                "a DIMSE address must look like dicom://AET@host:port "
                "(e.g. dicom://ORTHANC@pacs.example.org:4242)",
            )
            for url in ("dicom://A@pacs.example.org:abc", "dicom://A@pacs.example.org:99999")
        ),
    ],
)
def test_malformed_pacs_address_gains_a_fix(url, problem):
    with pytest.raises(DicomError) as err:
        pacs.check(url)
    assert str(_shape(err.value)) == f"{url}: {problem}; correct the --pacs address"


def test_too_long_ae_title_names_the_address():
    url = "dicom://ABCDEFGHIJKLMNOPQ@pacs.example.org:4242"
    with pytest.raises(DicomError) as err:
        pacs.check(url)
    exc = _shape(err.value)
    assert (
        exc.where == url and exc.problem == "AE title 'ABCDEFGHIJKLMNOPQ' must be 1-16 characters"
    )


def test_unreachable_dicomweb_pacs_names_the_url(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/dicom-web"
    with pytest.raises(DicomError) as err:
        pull_study(url, "1.2.3", tmp_path)
    exc = _shape(err.value)
    assert exc.where == url and exc.problem.startswith("cannot reach the PACS (")
    assert exc.fix == "check the URL and that the server is running and reachable"


def test_writing_a_non_volume_is_unchanged():
    with pytest.raises(DicomError) as err:
        ct_series(
            np.zeros((4, 4), np.int16),
            np.eye(4),
            study_uid="1.2",
            series_uid="1.3",
            frame_of_reference_uid="1.4",
            sop_uids=[],
            fixed={},
        )
    assert str(_shape(err.value)) == (
        "<array>: must be a 3D (x, y, z) volume, got shape (4, 4); pass one CT volume"
    )

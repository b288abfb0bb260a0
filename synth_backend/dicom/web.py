"""DICOMweb transfer with a PACS (dicomweb-client): STOW-RS to send, QIDO-RS + WADO-RS to pull.

``url`` is the DICOMweb base, e.g. ``http://127.0.0.1:8042/dicom-web`` for Orthanc with its
DICOMweb plugin. Network failures become one :class:`DicomError` line naming the URL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pydicom

from synth_backend.dicom.errors import DicomError
from synth_backend.io import staged_folder

TIMEOUT_S = 60
STOW_BATCH = 50  # instances per STOW-RS request (bounded request size)


def _client(url: str):
    from dicomweb_client.api import DICOMwebClient

    if not url.startswith(("http://", "https://")):
        raise DicomError(
            url,
            "--pacs must be a DICOMweb http(s) URL, e.g. http://host:8042/dicom-web",
            "correct the --pacs address",
        )
    client = DICOMwebClient(url=url.rstrip("/"))
    client.set_http_retry_params(retry=False)
    # no hang forever: patch the session's bound method in place
    client._session.request = _with_timeout(client._session.request)  # type: ignore[method-assign]
    return client


def _with_timeout(request):
    def call(*args, **kwargs):
        kwargs.setdefault("timeout", TIMEOUT_S)
        return request(*args, **kwargs)

    return call


@contextlib.contextmanager
def _network(url: str, action: str) -> Iterator[None]:
    import requests

    try:
        yield
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise DicomError(
            url,
            f"{action} failed with HTTP {status} ({exc})",
            "check the URL (the DICOMweb root, e.g. .../dicom-web), the UID and the PACS logs",
        ) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise DicomError(
            url,
            f"cannot reach the PACS ({exc.__class__.__name__})",
            "check the URL and that the server is running and reachable",
        ) from exc


def push_files(url: str, files: Sequence[Path]) -> int:
    """STOW-RS every file to ``url``; returns the number of instances stored."""
    client = _client(url)
    stored = 0
    for start in range(0, len(files), STOW_BATCH):
        batch = [pydicom.dcmread(f) for f in files[start : start + STOW_BATCH]]
        with _network(url, "STOW-RS store"):
            response = client.store_instances(datasets=batch)
        failed = response.get("FailedSOPSequence") if response is not None else None
        if failed:
            raise DicomError(
                url,
                f"the PACS refused {len(failed)} of {len(batch)} instances "
                f"(failure reason {failed[0].get('FailureReason', '?')})",
                "check the PACS logs",
            )
        stored += len(batch)
    return stored


def pull_study(url: str, study_uid: str, out_root: Path) -> Path:
    """QIDO-RS the study's series and WADO-RS each into ``out_root/<study>/<series>/``.

    Written into a temporary folder and renamed, so an interrupted pull leaves nothing that
    looks complete. Returns the study folder (pass it to the DICOM import).
    """
    client = _client(url)
    with _network(url, f"QIDO-RS search of study {study_uid}"):
        series = client.search_for_series(study_instance_uid=study_uid)
    if not series:
        raise DicomError(
            url,
            f"study {study_uid} not found on the PACS (no series)",
            "check the StudyInstanceUID",
        )
    final = Path(out_root) / study_uid
    with staged_folder(final) as tmp:
        for item in series:
            series_uid = str(item["0020000E"]["Value"][0])
            with _network(url, f"WADO-RS retrieve of series {series_uid}"):
                instances = client.retrieve_series(
                    study_instance_uid=study_uid, series_instance_uid=series_uid
                )
            folder = tmp / series_uid
            folder.mkdir()
            for ds in instances:
                ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return final

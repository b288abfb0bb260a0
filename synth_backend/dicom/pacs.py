"""One entry point for PACS transfer; the URL's scheme picks the protocol:
``http(s)://host/dicom-web`` -> DICOMweb (:mod:`web`), ``dicom://AET@host:port`` -> DIMSE
(:mod:`dimse`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from synth_backend.dicom.errors import DicomError


def _module(url: str):
    if url.startswith(("http://", "https://")):
        from synth_backend.dicom import web

        return web
    if url.startswith("dicom://"):
        from synth_backend.dicom import dimse

        return dimse
    raise DicomError(
        url,
        "--pacs must be a DICOMweb URL (http://host:8042/dicom-web) or a "
        "DIMSE address (dicom://AET@host:4242)",
        "correct the --pacs address",
    )


def check(url: str) -> None:
    """Raise :class:`DicomError` unless ``url`` names a protocol we speak (before any work)."""
    _module(url)
    if url.startswith("dicom://"):
        from synth_backend.dicom.dimse import parse_address

        parse_address(url)


def push(url: str, files: Sequence[Path]) -> int:
    """Store every file on the PACS at ``url``; returns the number stored."""
    return _module(url).push_files(url, files)


def pull(url: str, study_uid: str, out_root: Path) -> Path:
    """Retrieve a study into ``out_root/<study_uid>/``; returns that folder."""
    return _module(url).pull_study(url, study_uid, out_root)

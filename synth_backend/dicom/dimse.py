"""DIMSE transfer with a PACS (pynetdicom): C-STORE to send, C-GET to pull.

A DIMSE address is written as a URL, ``dicom://CALLED_AET@host:port`` (our calling AE title is
:data:`CALLING_AET`, or ``dicom://CALLED@host:port?calling=OURS``). C-GET needs no firewall
opening toward us (the PACS sends the instances back on the same association, which is why it
is used rather than C-MOVE); the PACS must allow our AE title to retrieve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pydicom

from synth_backend.dicom.errors import DicomError
from synth_backend.io import staged_folder

CALLING_AET = "TURINGCT"
TIMEOUT_S = 60
# Storage SOP classes a pull accepts: the ones the import reads (CT, SEG, RTSTRUCT) plus
# what is routinely in a CT study beside them, so their sub-operations do not fail the GET.
RETRIEVED_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",
    "1.2.840.10008.5.1.4.1.1.66.4",
    "1.2.840.10008.5.1.4.1.1.481.3",
    "1.2.840.10008.5.1.4.1.1.88.67",
    "1.2.840.10008.5.1.4.1.1.7",
)


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    called: str
    calling: str

    def __str__(self) -> str:
        return f"dicom://{self.called}@{self.host}:{self.port}"


def parse_address(url: str) -> Address:
    """``dicom://CALLED@host:port[?calling=AET]`` -> :class:`Address` (one-line errors)."""
    parsed = urlparse(url)
    try:
        port = parsed.port  # urllib raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        port = None
    if parsed.scheme != "dicom" or not parsed.hostname or not port:
        raise DicomError(
            url,
            "a DIMSE address must look like dicom://AET@host:port "
            "(e.g. dicom://ORTHANC@pacs.example.org:4242)",
            "correct the --pacs address",
        )
    called = parsed.username or "ANY-SCP"
    calling = parse_qs(parsed.query).get("calling", [CALLING_AET])[0]
    for title in (called, calling):
        if not 0 < len(title) <= 16:
            raise DicomError(
                url,
                f"AE title {title!r} must be 1-16 characters",
                "fix the AE title in --pacs (dicom://CALLED@host:port?calling=CALLING)",
            )
    return Address(parsed.hostname, port, called, calling)


def _associate(ae, address: Address, **kwargs):
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT_S
    try:
        assoc = ae.associate(address.host, address.port, ae_title=address.called, **kwargs)
    except OSError as exc:
        raise DicomError(
            str(address),
            f"cannot reach the PACS ({exc})",
            "check the host and port and that the DICOM server is running",
        ) from exc
    if not assoc.is_established:
        why = "rejected" if assoc.is_rejected else "aborted or unreachable"
        raise DicomError(
            str(address),
            f"association {why}",
            "check the host, port and called AE title, and that the PACS accepts calling AE "
            f"{address.calling!r}",
        )
    return assoc


def push_files(url: str, files: Sequence[Path]) -> int:
    """C-STORE every file; returns the number stored. Any refused instance is an error."""
    from pynetdicom import AE

    address = parse_address(url)
    datasets = [pydicom.dcmread(f) for f in files]
    ae = AE(ae_title=address.calling)
    for sop_class, syntax in sorted(
        {(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}
    ):
        ae.add_requested_context(sop_class, [syntax])
    assoc = _associate(ae, address)
    try:
        for path, ds in zip(files, datasets, strict=True):
            status = assoc.send_c_store(ds)
            code = getattr(status, "Status", None)
            if code != 0x0000:
                raise DicomError(
                    path,
                    f"C-STORE to {address} failed (status {'none' if code is None else hex(code)})",
                    "check the PACS logs and that it accepts this SOP class",
                )
    finally:
        assoc.release()
    return len(datasets)


def pull_study(url: str, study_uid: str, out_root: Path) -> Path:
    """C-GET a study into ``out_root/<study>/`` (temporary folder, then renamed)."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless
    from pynetdicom import AE, build_role, evt
    from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made at import time
        StudyRootQueryRetrieveInformationModelGet,
    )

    address = parse_address(url)
    final = Path(out_root) / study_uid
    received: list[Path] = []

    def on_store(event):
        path = tmp / f"{event.request.AffectedSOPInstanceUID}.dcm"
        path.write_bytes(event.encoded_dataset())
        received.append(path)
        return 0x0000

    ae = AE(ae_title=address.calling)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    for sop_class in RETRIEVED_CLASSES:
        ae.add_requested_context(
            sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless]
        )
    roles = [build_role(c, scp_role=True) for c in RETRIEVED_CLASSES]
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    with staged_folder(final) as tmp:
        assoc = _associate(ae, address, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, on_store)])
        try:
            final_status = None
            for status, _ in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                if status is not None and "Status" in status:
                    final_status = int(status.Status)
        finally:
            assoc.release()
        if final_status is None:
            raise DicomError(
                str(address),
                f"C-GET of study {study_uid} got no answer",
                f"check the PACS allows C-GET from AE {address.calling!r}",
            )
        if final_status not in (0x0000, 0xB000) or not received:
            raise DicomError(
                str(address),
                f"C-GET of study {study_uid} returned status {hex(final_status)} with "
                f"{len(received)} instance(s)",
                f"check the StudyInstanceUID and that the PACS lets {address.calling!r} retrieve",
            )
    return final

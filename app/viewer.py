"""Window presets and the payload of the reader's CT viewer (blinded ``.nii.gz`` bytes).

The viewer itself is :mod:`app.slice_viewer` (a Streamlit components-v2 element drawing on
canvases in the browser, where the reader changes the window; the window on screen comes
back with the vote and is stored with the answer); this module holds the window type, the
preset labels and the exact bytes that leave the server for a case.

Blinding: everything the browser gets is the same for every case of a study apart from voxel
values: no file name at all, a gzip header without file name or time stamp, and the NIfTI
header exactly as the blinded export wrote it (identical fields for both arms).
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from dataclasses import dataclass

import nibabel as nib

from core.errors import InputError
from studies.spec import WINDOW_PRESETS as SPEC_PRESETS


def preset_label(name: str, width: float, level: float) -> str:
    """What the reader sees for a preset, e.g. ``"Abdomen (W400 / L40)"``."""
    return f"{name.capitalize()} (W{width:g} / L{level:g})"


# Reader-facing label -> (width, level) in HU, in the spec's order (abdomen, liver, lung, bone).
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    preset_label(name, w, lvl): (w, lvl) for name, (w, lvl) in SPEC_PRESETS.items()
}
CUSTOM = "Custom"
VIEWER_HEIGHT_PX = 640

_GZIP_MAGIC = b"\x1f\x8b"
_FNAME = 0x08
_FEXTRA = 0x04
_FCOMMENT = 0x10
_FHCRC = 0x02


class ViewerError(InputError):
    """A volume that cannot be shown (not NIfTI, bad window) or a vote that cannot be read.

    ``where`` names the input: ``"case volume"`` (never its file name: the browser may see the
    message), ``"window"``, ``"height"``, ``"payload"`` or ``"vote"``.
    """


@dataclass(frozen=True)
class Window:
    """Display window in HU: ``width`` > 0, ``level`` is the centre."""

    width: float
    level: float

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ViewerError(
                "window",
                f"width must be > 0 HU, got {self.width}",
                "pick a preset or type a positive width",
            )

    @property
    def display_range(self) -> tuple[float, float]:
        """(cal_min, cal_max) in HU: level -/+ width / 2."""
        return self.level - self.width / 2.0, self.level + self.width / 2.0


def preset_window(name: str, custom: tuple[float, float] | None = None) -> Window:
    """Window of a preset name; ``CUSTOM`` takes ``custom=(width, level)``."""
    if name == CUSTOM:
        if custom is None:
            raise ViewerError(
                "window",
                "custom window needs a width and a level (HU)",
                "pass custom=(width, level)",
            )
        return Window(*custom)
    if name not in WINDOW_PRESETS:
        raise ViewerError(
            "window",
            f"preset must be one of {[*WINDOW_PRESETS, CUSTOM]}, got {name!r}",
            "pick one of them",
        )
    return Window(*WINDOW_PRESETS[name])


def _check_nifti1(raw_header: bytes) -> None:
    """Refuse anything but a NIfTI-1 header (``sizeof_hdr`` 348 in either byte order)."""
    if len(raw_header) >= 4 and 348 in (
        struct.unpack("<i", raw_header[:4])[0],
        struct.unpack(">i", raw_header[:4])[0],
    ):
        return
    raise ViewerError(
        "case volume",
        "is not a NIfTI-1 file (sizeof_hdr is not 348)",
        "re-export the study (blinded exports are NIfTI-1 .nii.gz)",
    )


def read_display_range(raw_header: bytes) -> tuple[float, float]:
    """(cal_min, cal_max) stored in an uncompressed NIfTI-1 header, in HU.

    The slice viewer does not use it (the window travels as an argument of the page); it is kept
    for callers that inspect the exported header.
    """
    _check_nifti1(raw_header)
    hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(raw_header[:348]))
    return float(hdr["cal_min"]), float(hdr["cal_max"])


def scrub_gzip_header(data: bytes) -> bytes:
    """Gzip stream with modification time zeroed and the original file name removed.

    The gzip header of a blinded file can carry its export time and file name; neither may reach
    the browser. Only the header is rewritten (the deflate stream and CRC stay as they are).
    """
    if data[:2] != _GZIP_MAGIC or len(data) < 10:
        raise ViewerError(
            "case volume",
            "is not gzip-compressed",
            "re-export the study (blinded exports are NIfTI-1 .nii.gz)",
        )
    flags = data[3]
    if flags & (_FHCRC | _FEXTRA | _FCOMMENT):
        # Rare header options: fall back to a clean re-compression.
        return gzip.compress(gzip.decompress(data), compresslevel=1, mtime=0)
    pos = 10
    if flags & _FNAME:
        pos = data.index(b"\x00", 10) + 1
    return data[:3] + bytes([flags & ~_FNAME]) + b"\x00\x00\x00\x00" + data[8:10] + data[pos:]


def prepare_volume(data: bytes) -> bytes:
    """Bytes to send to the browser for a blinded case: gzip-compressed NIfTI-1.

    ``data`` is a ``.nii`` or ``.nii.gz`` file's content. A gzip file is sent as is with only
    its gzip header scrubbed (no re-compression: < 10 ms for a 256 x 256 x 128 crop); an
    uncompressed file is compressed at level 1 with a zero time stamp. Voxels and the NIfTI
    header are never changed, so cases exported alike stay byte-identical apart from voxels.
    """
    if data[:2] == _GZIP_MAGIC:
        _check_nifti1(zlib.decompressobj(wbits=31).decompress(data, 348))
        return scrub_gzip_header(data)
    _check_nifti1(data[:4])
    return gzip.compress(data, compresslevel=1, mtime=0)

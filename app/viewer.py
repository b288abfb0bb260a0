"""Client-side 3D CT viewer for the reader page: NiiVue through ``niivue-streamlit``.

The blinded ``.nii.gz`` is sent to the browser once per case (and once more when the reader picks
another window preset); slice scrolling (mouse wheel; keys H J K L and Ctrl+U / Ctrl+D), zoom and
the three planes run in the browser, so a slice change never needs a server round trip.

The window preset travels in the NIfTI header's ``cal_min``/``cal_max`` (display range, HU),
which NiiVue honours on load. The preset is chosen in a Streamlit widget, so the server always
knows the window/level on screen and stores it with the answer.

Blinding: everything the browser gets is the same for every case of a study apart from voxel
values: a constant file name, a gzip header without file name or time stamp, and (in
:func:`prepare_volume`) the display range of the preset, not of the source file.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from dataclasses import dataclass

import nibabel as nib

from studies.spec import WINDOW_PRESETS as SPEC_PRESETS


def preset_label(name: str, width: float, level: float) -> str:
    """What the reader sees for a preset, e.g. ``"Abdomen (W400 / L40)"``."""
    return f"{name.capitalize()} (W{width:g} / L{level:g})"


# Reader-facing label -> (width, level) in HU, in the spec's order (abdomen, liver, lung, bone).
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    preset_label(name, w, lvl): (w, lvl) for name, (w, lvl) in SPEC_PRESETS.items()
}
CUSTOM = "Custom"
# Constant for every case: NiiVue picks the reader from the extension, readers see nothing else.
BROWSER_FILENAME = "case.nii.gz"
VIEWER_HEIGHT_PX = 640

_GZIP_MAGIC = b"\x1f\x8b"
_FNAME = 0x08
_FEXTRA = 0x04
_FCOMMENT = 0x10
_FHCRC = 0x02


class ViewerError(ValueError):
    """A volume that cannot be shown (not NIfTI, bad window)."""


@dataclass(frozen=True)
class Window:
    """Display window in HU: ``width`` > 0, ``level`` is the centre."""

    width: float
    level: float

    def __post_init__(self) -> None:
        if not self.width > 0:
            raise ViewerError(f"window width must be > 0 HU, got {self.width}; pick a preset "
                              "or type a positive width")

    @property
    def display_range(self) -> tuple[float, float]:
        """(cal_min, cal_max) in HU: level -/+ width / 2."""
        return self.level - self.width / 2.0, self.level + self.width / 2.0


def preset_window(name: str, custom: tuple[float, float] | None = None) -> Window:
    """Window of a preset name; ``CUSTOM`` takes ``custom=(width, level)``."""
    if name == CUSTOM:
        if custom is None:
            raise ViewerError("custom window needs a width and a level (HU)")
        return Window(*custom)
    if name not in WINDOW_PRESETS:
        raise ViewerError(f"window preset must be one of {[*WINDOW_PRESETS, CUSTOM]}, "
                          f"got {name!r}")
    return Window(*WINDOW_PRESETS[name])


def _header_class(first4: bytes) -> tuple[type[nib.Nifti1Header], int]:
    """NIfTI-1 or -2 header class and size, from ``sizeof_hdr`` in either byte order."""
    for fmt in ("<i", ">i"):
        size = struct.unpack(fmt, first4)[0]
        if size == 348:
            return nib.Nifti1Header, 348
        if size == 540:
            return nib.Nifti2Header, 540
    raise ViewerError("case volume is not a NIfTI file (sizeof_hdr is neither 348 nor 540); "
                      "re-export the study")


def read_display_range(raw_header: bytes) -> tuple[float, float]:
    """(cal_min, cal_max) stored in an uncompressed NIfTI header."""
    cls, size = _header_class(raw_header[:4])
    hdr = cls.from_fileobj(io.BytesIO(raw_header[:size]))
    return float(hdr["cal_min"]), float(hdr["cal_max"])


def with_display_range(raw: bytes, window: Window) -> bytes:
    """Uncompressed NIfTI bytes with ``cal_min``/``cal_max`` set to the window; data untouched."""
    cls, size = _header_class(raw[:4])
    hdr = cls.from_fileobj(io.BytesIO(raw[:size]))
    hdr["cal_min"], hdr["cal_max"] = window.display_range
    block = hdr.binaryblock
    if len(block) != size:  # pragma: no cover - nibabel guarantees the size
        raise ViewerError("NIfTI header changed size while setting the display range")
    return block + raw[size:]


def scrub_gzip_header(data: bytes) -> bytes:
    """Gzip stream with modification time zeroed and the original file name removed.

    The gzip header of a blinded file can carry its export time and file name; neither may reach
    the browser. Only the header is rewritten (the deflate stream and CRC stay as they are).
    """
    if data[:2] != _GZIP_MAGIC or len(data) < 10:
        raise ViewerError("case volume is not gzip-compressed")
    flags = data[3]
    if flags & (_FHCRC | _FEXTRA | _FCOMMENT):
        # Rare header options: fall back to a clean re-compression.
        return gzip.compress(gzip.decompress(data), compresslevel=1, mtime=0)
    pos = 10
    if flags & _FNAME:
        pos = data.index(b"\x00", 10) + 1
    return data[:3] + bytes([flags & ~_FNAME]) + b"\x00\x00\x00\x00" + data[8:10] + data[pos:]


def prepare_volume(data: bytes, window: Window) -> bytes:
    """Bytes to send to the browser for a blinded case, displayed with ``window``.

    ``data`` is a ``.nii`` or ``.nii.gz`` file's content. When the file already carries the
    window's display range (the study's default preset written by the exporter) a gzip file is
    sent as is, with only its gzip header scrubbed (fast path, no re-compression: < 10 ms for a
    256 x 256 x 128 crop); otherwise the header is patched and the volume re-compressed at
    level 1. Output is always gzip-compressed NIfTI.
    """
    if data[:2] == _GZIP_MAGIC:
        head = zlib.decompressobj(wbits=31).decompress(data, 540)
        lo, hi = read_display_range(head)
        want = window.display_range
        if abs(lo - want[0]) < 1e-3 and abs(hi - want[1]) < 1e-3:
            return scrub_gzip_header(data)
        raw = gzip.decompress(data)
    else:
        raw = data
    return gzip.compress(with_display_range(raw, window), compresslevel=1, mtime=0)


def show_viewer(volume: bytes, *, key: str, height: int = VIEWER_HEIGHT_PX) -> None:
    """Render NiiVue in multiplanar view (axial, coronal, sagittal) for prepared ``volume``.

    Radiological convention (patient left on screen right), crosshair on, no click events sent
    back (``update_interval_ms=None``) so interacting with the viewer never reruns the page.
    """
    from niivue_component import niivue_viewer

    niivue_viewer(
        nifti_data=volume,
        filename=BROWSER_FILENAME,
        height=height,
        view_mode="multiplanar",
        styled=True,
        settings={"crosshair": True, "radiological": True, "colorbar": False,
                  "interpolation": True},
        update_interval_ms=None,
        key=key,
    )

"""Masks from DICOM SEG (read with highdicom) and RTSTRUCT (contours rasterized on the CT grid).

Both produce boolean (K_source, R, C) stacks on the source slices of the referenced CT series;
:meth:`SliceGrid.finish` then maps them onto the output grid exactly as the CT was mapped.

RTSTRUCT rasterization is written here because no library in the stack does it on an
arbitrary CT grid: each CLOSED_PLANAR contour is converted to continuous (row, column)
indices of its slice and filled with ``skimage.draw.polygon`` (pixels whose centre lies
inside); several contours of one ROI on one slice combine by XOR (even-odd rule), so inner
contours cut holes, the convention of plastimatch and dcmrtstruct2nii.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from synth_backend.dicom.errors import DicomError
from synth_backend.dicom.grid import SliceGrid


@dataclass
class MaskSource:
    """A SEG or RTSTRUCT file, its referenced CT series and its segments (number -> names,
    most specific first)."""

    path: Path
    kind: str  # "SEG" | "RTSTRUCT"
    series_uid: str  # of the SEG/RTSTRUCT object itself
    referenced_series: set[str]
    frame_of_reference: str
    segments: dict[int, list[str]] = field(default_factory=dict)


def describe_seg(path: Path, header: pydicom.Dataset) -> MaskSource:
    """Segments and references of a SEG from its header (no pixel data read)."""
    refs = {str(item.SeriesInstanceUID) for item in header.get("ReferencedSeriesSequence", [])}
    segments = {}
    for seg in header.get("SegmentSequence", []):
        names = [str(seg.get("SegmentLabel", "")).strip()]
        for item in seg.get("SegmentedPropertyTypeCodeSequence", []):
            names.append(str(item.get("CodeMeaning", "")).strip())
        segments[int(seg.SegmentNumber)] = [n for n in names if n] or [
            f"segment {seg.SegmentNumber}"
        ]
    return MaskSource(
        path,
        "SEG",
        str(header.SeriesInstanceUID),
        refs,
        str(header.get("FrameOfReferenceUID", "")),
        segments,
    )


def describe_rtstruct(path: Path, header: pydicom.Dataset) -> MaskSource:
    refs = set()
    for fr in header.get("ReferencedFrameOfReferenceSequence", []):
        for study in fr.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                refs.add(str(series.SeriesInstanceUID))
    frames = [
        str(fr.FrameOfReferenceUID)
        for fr in header.get("ReferencedFrameOfReferenceSequence", [])
        if "FrameOfReferenceUID" in fr
    ]
    segments = {
        int(r.ROINumber): [str(r.get("ROIName", "")).strip() or f"ROI {r.ROINumber}"]
        for r in header.get("StructureSetROISequence", [])
    }
    return MaskSource(
        path, "RTSTRUCT", str(header.SeriesInstanceUID), refs, frames[0] if frames else "", segments
    )


def read_seg(
    source: MaskSource, grid: SliceGrid, numbers: Iterable[int], series: str
) -> dict[int, np.ndarray]:
    """Boolean (K_source, R, C) stack per segment number, on the series' source slices."""
    import highdicom as hd

    numbers = sorted(numbers)
    try:
        seg = hd.seg.segread(source.path)
    except Exception as exc:
        raise DicomError(
            source.path,
            f"unreadable DICOM SEG ({exc.__class__.__name__}: {exc})",
            "export the segmentation again",
        ) from exc
    if (int(seg.Rows), int(seg.Columns)) != grid.shape_rc:
        raise DicomError(
            source.path,
            f"SEG frames are {seg.Rows}x{seg.Columns} but {series} has "
            f"{grid.shape_rc[0]}x{grid.shape_rc[1]} images",
            "this SEG belongs to another series: import it with its own CT series",
        )
    referenced = {uid for _, _, uid in seg.get_source_image_uids()}
    known = [uid for uid in grid.sop_uids if uid in referenced]
    try:
        if known:
            pixels = seg.get_pixels_by_source_instance(
                source_sop_instance_uids=list(grid.sop_uids),
                segment_numbers=numbers,
                combine_segments=False,
                assert_missing_frames_are_empty=True,
                dtype=np.float32,
            )
            # BINARY frames are 0/1; FRACTIONAL (probability / occupancy) are rescaled to
            # [0, 1] by highdicom and taken at 0.5, the usual hard-mask reading
            return {n: pixels[..., i] >= 0.5 for i, n in enumerate(numbers)}
        return _seg_by_position(seg, grid, numbers, series, source.path)
    except DicomError:
        raise
    except Exception as exc:
        raise DicomError(
            source.path,
            f"SEG frames do not match the slices of {series} ({exc.__class__.__name__}: {exc})",
            "the SEG belongs to another series or reconstruction: import it with its own CT series",
        ) from exc


def _seg_by_position(
    seg, grid: SliceGrid, numbers, series: str, path: Path
) -> dict[int, np.ndarray]:
    """Fallback when frames name no source image: place each frame by its plane position."""
    frames = np.asarray(seg.pixel_array)
    if frames.ndim == 2:
        frames = frames[None]
    out = {n: np.zeros((len(grid.positions), *grid.shape_rc), bool) for n in numbers}
    shared = seg.get("SharedFunctionalGroupsSequence", [None])[0]
    for i, item in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ident = item if "SegmentIdentificationSequence" in item else shared
        number = int(ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        if number not in out:
            continue
        ipp = np.asarray(item.PlanePositionSequence[0].ImagePositionPatient, float)
        k = grid.source_index_at(ipp)
        if k is None or (
            np.abs(grid.plane_rc(ipp[None], k)[0]).max() > 0.01 and grid.tilt_deg == 0
        ):
            raise DicomError(
                path,
                f"SEG frame {i + 1} at {ipp.round(2).tolist()} mm lies on no slice of {series}",
                "the SEG belongs to another series: import it with its own CT series",
            )
        out[number][k] |= frames[i] > 0
    return out


def contour_points(contour: pydicom.Dataset) -> np.ndarray:
    """(N, 3) LPS points of a contour. Parses the raw DS text with numpy: pydicom's per-value
    DSfloat objects cost ~1 s per 100k points, and real structure sets hold millions."""
    raw = contour.get_item("ContourData")
    value = getattr(raw, "value", None)
    if isinstance(value, bytes):
        flat = np.array(value.decode("ascii").replace("\\", " ").split(), dtype=float)
    else:
        flat = np.asarray(contour.ContourData, dtype=float)
    if flat.size == 0 or flat.size % 3:
        raise ValueError(f"ContourData must hold x, y, z triplets, got {flat.size} values")
    return flat.reshape(-1, 3)


def read_rtstruct(
    source: MaskSource, grid: SliceGrid, numbers: Iterable[int], series: str
) -> dict[int, np.ndarray]:
    """Boolean (K_source, R, C) stack per ROI number, rasterized on the corrected grid."""
    from skimage.draw import polygon

    try:
        ds = pydicom.dcmread(source.path)
    except Exception as exc:
        raise DicomError(
            source.path,
            f"unreadable RTSTRUCT ({exc.__class__.__name__})",
            "export the structure set again",
        ) from exc
    numbers = set(numbers)
    shape = (len(grid.positions), *grid.shape_rc)
    out = {n: np.zeros(shape, dtype=bool) for n in numbers}
    names = {n: source.segments[n][0] for n in numbers}
    for roi in ds.get("ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        if number not in out:
            continue
        for contour in roi.get("ContourSequence", []):
            if str(contour.get("ContourGeometricType", "CLOSED_PLANAR")) != "CLOSED_PLANAR":
                continue
            try:
                points = contour_points(contour)
            except ValueError as exc:
                raise DicomError(
                    source.path,
                    f"a contour of ROI {names[number]!r} is malformed ({exc})",
                    "export the structure set again",
                ) from exc
            k = grid.source_index_at(points.mean(axis=0))
            if k is None:
                z = float(points.mean(axis=0) @ grid.normal)
                raise DicomError(
                    source.path,
                    f"a contour of ROI {names[number]!r} at {z:.2f} mm lies on no slice of "
                    f"{series}",
                    "the RTSTRUCT belongs to another series or reconstruction: import it with "
                    "its own CT",
                )
            rc = grid.plane_rc(points, k)
            rr, cc = polygon(rc[:, 0], rc[:, 1], shape=grid.shape_rc)
            fill = np.zeros(grid.shape_rc, dtype=bool)
            fill[rr, cc] = True
            out[number][k] ^= fill
    return out

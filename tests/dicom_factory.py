"""DICOM objects built at test time from arrays: CT series (pydicom), SEG (highdicom) and
RTSTRUCT (pydicom, contours from skimage.measure.find_contours)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from synth_backend.dicom.write import ct_series, new_uid

SHAPE = (64, 64, 20)
SPACING = (0.8, 0.8, 2.5)
PATIENT = {
    "PatientName": "Test^Patient",
    "PatientID": "P001",
    "PatientBirthDate": "19700101",
    "PatientSex": "O",
    "AccessionNumber": "A1",
    "StudyID": "1",
    "StudyDate": "20260101",
    "StudyTime": "120000",
    "ReferringPhysicianName": "",
    "SeriesNumber": 2,
    "Manufacturer": "TestCo",
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
    "SeriesDescription": "Abdomen 2.5",
}


def phantom(shape=SHAPE, spacing=SPACING, seed=0):
    """(int16 HU ct, liver bool, tumor bool, RAS affine) on an (x, y, z) grid; LPS-stored
    like a scanner's axial series (x toward the patient's left, y posterior)."""
    rng = np.random.default_rng(seed)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).astype(float)
    mm = idx * np.asarray(spacing)
    centre = (np.asarray(shape) - 1) * np.asarray(spacing) / 2
    body = (((mm - centre)[..., :2] / (0.45 * np.asarray(shape[:2]) * spacing[:2])) ** 2).sum(
        -1
    ) <= 1
    liver = (((mm - centre - [-6, 0, 0]) / [14.0, 12.0, 18.0]) ** 2).sum(-1) <= 1
    tumor = np.linalg.norm(mm - centre - [-8, 2, 0], axis=-1) <= 5.0
    ct = np.where(body, 40.0, -1000.0)
    ct[liver] = 100.0
    ct[tumor] = 60.0
    ct = np.rint(ct + rng.normal(0, 12, size=shape)).astype(np.int16)
    affine = np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])  # LPS axes in RAS terms
    affine[:3, 3] = [120.0, 80.0, -200.0]
    return ct, liver, tumor, affine


def ct_datasets(ct, affine, root=None, **fixed):
    root = root or generate_uid()[:30].rstrip(".") + "."
    header = {**PATIENT, **fixed}
    return ct_series(
        ct,
        affine,
        study_uid=new_uid(root),
        series_uid=new_uid(root),
        frame_of_reference_uid=new_uid(root),
        sop_uids=[new_uid(root) for _ in range(ct.shape[2])],
        fixed=header,
    )


def save(datasets, folder: Path, names=None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets):
        path = folder / (names[i] if names else f"{i:04d}")  # no extension, like PACS exports
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _frames(mask_xyz):
    return np.ascontiguousarray(np.asarray(mask_xyz).transpose(2, 1, 0))  # (k, r, c)


def seg_dataset(source, masks: dict[str, np.ndarray], *, types=None, fractional=False):
    """A highdicom SEG of ``source`` CT datasets; ``masks``: label -> (x, y, z) bool, or
    floats in [0, 1] with ``fractional``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    types = types or {}
    descriptions, stack = [], []
    for i, (label, mask) in enumerate(masks.items(), start=1):
        prop = types.get(label, codes.SCT.Liver if "liver" in label.lower() else codes.SCT.Neoplasm)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=i,
                segment_label=label,
                segmented_property_category=codes.SCT.Tissue,
                segmented_property_type=prop,
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
        stack.append(_frames(mask))
    pixels = np.stack(stack, axis=-1).astype(np.float32 if fractional else np.uint8)
    return hd.seg.Segmentation(
        source_images=source,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.FRACTIONAL
        if fractional
        else hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=9,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="TestCo",
        manufacturer_model_name="test",
        software_versions="1",
        device_serial_number="1",
        omit_empty_frames=True,
    )


def rtstruct_dataset(source, masks: dict[str, np.ndarray]):
    """A minimal RTSTRUCT of ``source``: each mask's slices as CLOSED_PLANAR contours at the
    0.5 iso-line (through the midpoints between inside and outside pixels)."""
    from skimage.measure import find_contours

    first = source[0]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "RTSTRUCT"
    for key in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyTime"):
        setattr(ds, key, first.get(key))
    ds.SeriesInstanceUID = generate_uid()
    ds.StructureSetLabel = "test"
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ContourImageSequence = []
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    study.RTReferencedSeriesSequence = [series]
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = [study]
    ds.ReferencedFrameOfReferenceSequence = [frame]
    ds.StructureSetROISequence, ds.ROIContourSequence = [], []
    iop = np.asarray(first.ImageOrientationPatient, float)
    ps = np.asarray(first.PixelSpacing, float)
    for number, (name, mask) in enumerate(masks.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, name
        roi.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
        ds.StructureSetROISequence.append(roi)
        rc = Dataset()
        rc.ReferencedROINumber = number
        rc.ContourSequence = []
        for k, frame_mask in enumerate(_frames(mask)):
            ipp = np.asarray(source[k].ImagePositionPatient, float)
            padded = np.pad(frame_mask.astype(float), 1)
            for line in find_contours(padded, 0.5):
                r, c = line[:, 0] - 1, line[:, 1] - 1
                pts = ipp + np.outer(c * ps[1], iop[:3]) + np.outer(r * ps[0], iop[3:])
                contour = Dataset()
                contour.ContourGeometricType = "CLOSED_PLANAR"
                contour.NumberOfContourPoints = len(pts)
                contour.ContourData = [f"{v:.4f}" for v in pts.ravel()]
                rc.ContourSequence.append(contour)
        ds.ROIContourSequence.append(rc)
    return ds


def write_case(
    folder: Path,
    *,
    seed=0,
    seg=True,
    rtstruct=False,
    labels=("Liver", "Neoplasm"),
    shape=SHAPE,
    spacing=SPACING,
):
    """A CT series (+ SEG and/or RTSTRUCT of liver and tumor) under ``folder``; returns
    (ct, liver, tumor, affine, ct datasets)."""
    ct, liver, tumor, affine = phantom(shape, spacing, seed)
    source = ct_datasets(ct, affine)
    save(source, folder / "ct")
    masks = {labels[0]: liver | tumor, labels[1]: tumor}
    if seg:
        seg_dataset(source, masks).save_as(folder / "seg.dcm", enforce_file_format=True)
    if rtstruct:
        rtstruct_dataset(source, masks).save_as(folder / "rtstruct", enforce_file_format=True)
    return ct, liver, tumor, affine, source


def read(path):
    return pydicom.dcmread(path)

"""DICOM in and out: CT series (+ SEG / RTSTRUCT masks) -> NIfTI for the catalog, blinded
studies -> de-identified CT series, and DICOMweb transfer to and from a PACS.

Modules: ``scan`` (find and classify files), ``grid`` (slice geometry, tilt, spacing checks,
resampling), ``masks`` (SEG via highdicom, RTSTRUCT rasterization), ``labels`` (segment name ->
organ / tumor), ``convert`` (series -> NIfTI + provenance -> catalog records), ``write``
(volume -> CT series), ``pacs`` (protocol by URL scheme: ``web`` STOW-RS / QIDO-RS / WADO-RS,
``dimse`` C-STORE / C-GET).
"""

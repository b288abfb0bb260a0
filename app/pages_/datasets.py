"""Datasets (researchers): import a dataset (the `turingct data import` formats) and browse the
catalog of registered CT volumes, by dataset."""

from __future__ import annotations

import zlib

import streamlit as st

from app import state

login = state.require_login(*state.RESEARCH_ROLES)

import pandas as pd  # noqa: E402  (after the guard)

from app import admin_ui, safe_text  # noqa: E402
from catalog.volumes import list_volumes  # noqa: E402
from core.errors import TuringCTError  # noqa: E402
from studies import admin  # noqa: E402
from synth_backend.datasets import FORMATS, ORGAN_NAMES  # noqa: E402

FORMAT_HELP = {
    "msd": "Medical Segmentation Decathlon task folder (imagesTr/ + labelsTr/)",
    "kits": "KiTS folder (case_*/imaging.nii.gz + segmentation.nii.gz)",
    "atlas": "AbdomenAtlas folder (or a phantom cohort made by `turingct phantom`)",
    "totalseg": "TotalSegmentator output (multi-label file or folder) + its CT",
    "manifest": "CSV: case,ct,organ,organ_mask[,organ_label,tumor_mask,tumor_label,tumor_kind]",
    "dicom": "folder of DICOM files: CT series with SEG or RTSTRUCT masks (converted once to NIfTI "
    "in the data folder)",
}

st.title("Datasets")

with st.expander("Import a dataset", expanded=False):
    st.caption(
        "Files are registered by path and SHA-256 on this server; nothing is copied "
        "(DICOM series are converted once to NIfTI in the data folder). "
        "Every case is validated before anything is written; importing again adds only "
        "new cases."
    )
    with st.form("turingct_import"):
        fmt = st.selectbox("Format", FORMATS, format_func=lambda f: f"{f}: {FORMAT_HELP[f]}")
        path = st.text_input("Path on the server (folder, file or manifest CSV)")
        name = st.text_input("Dataset name (default: the folder or file name)")
        organs = st.multiselect("Organs (default: all found)", list(ORGAN_NAMES))
        with st.container():
            st.caption("TotalSegmentator only:")
            t1, t2, t3 = st.columns(3)
            ct = t1.text_input("CT file")
            class_map = t2.text_input("Class map JSON")
            case_id = t3.text_input("Case id")
        if st.form_submit_button("Import dataset"):
            if not path.strip():
                st.error("Path must be given; type the dataset's folder or file on the server")
            else:
                try:
                    with (
                        st.spinner("Validating and registering the cases"),
                        admin_ui.staff_session(login) as (session, user),
                    ):
                        report = admin.import_dataset(
                            session,
                            user,
                            fmt,
                            path.strip(),
                            name=name.strip() or None,
                            organs=organs or None,
                            ct=ct.strip() or None,
                            class_map=class_map.strip() or None,
                            case_id=case_id.strip() or None,
                        )
                except TuringCTError as exc:  # layout, file or validation problem: one line
                    safe_text.error(str(exc))
                else:
                    safe_text.success(
                        f"Dataset {report.dataset!r}: {len(report.added)} case(s) "
                        f"added, {len(report.skipped_existing)} already registered."
                    )
                    if report.skipped_organs:
                        safe_text.info(
                            "Organs not in the field of view (skipped): "
                            + ", ".join(report.skipped_organs)
                        )

rows = admin_ui.staff_call(login, list_volumes)

if not rows:
    st.info(
        "The catalog is empty. Import a dataset above or with `turingct data import PATH "
        "--format msd|kits|atlas|totalseg|manifest`, or build the phantom cohort with "
        "`turingct phantom --out DIR` and import it with format atlas."
    )
    st.stop()

table = pd.DataFrame(rows)
datasets = sorted(table["dataset"].unique())
st.caption(
    f"{len(table)} volumes in {len(datasets)} datasets. Volumes are registered by path "
    "and SHA-256; nothing is copied."
)
# keyed by the dataset list: a dataset imported just now is shown, not filtered out
chosen = st.multiselect(
    "Datasets",
    datasets,
    default=datasets,
    key="turingct_ds_filter_" + str(zlib.crc32("|".join(datasets).encode())),
)
st.dataframe(table[table["dataset"].isin(chosen)], hide_index=True, width="stretch")

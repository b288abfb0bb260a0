"""Datasets (researchers): the catalog of registered CT volumes, by dataset."""

from __future__ import annotations

import streamlit as st

from app import state

login = state.require_login(*state.RESEARCH_ROLES)

import pandas as pd  # noqa: E402  (after the guard)

from app import admin_ui  # noqa: E402
from synth_backend.catalog import list_volumes  # noqa: E402

st.title("Datasets")
rows = admin_ui.staff_call(login, list_volumes)

if not rows:
    st.info("The catalog is empty. Import a dataset with `turingct data import PATH --format "
            "msd|kits|atlas|totalseg|manifest`, or build the phantom cohort with `turingct "
            "phantom --out DIR` and import it with `turingct data import DIR --format atlas`.")
    st.stop()

table = pd.DataFrame(rows)
datasets = sorted(table["dataset"].unique())
st.caption(f"{len(table)} volumes in {len(datasets)} datasets. Volumes are registered by path "
           "and SHA-256; nothing is copied.")
chosen = st.multiselect("Datasets", datasets, default=datasets, key="turingct_ds_filter")
st.dataframe(table[table["dataset"].isin(chosen)], hide_index=True, width="stretch")

"""Streamlit page used by ``benchmarks/viewer.py``: shows prepared case volumes through the
app's viewer (``app.viewer``), switching case on a button, exactly like the reading page."""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from app.slice_viewer import show_slice_viewer
from app.viewer import Window

cases = sorted(Path(os.environ["TURINGCT_BENCH_DIR"]).glob("case*.nii.gz"))
index = st.session_state.setdefault("bench_case", 0)
if st.button("Next case"):
    index = st.session_state["bench_case"] = (index + 1) % len(cases)
window = Window(400.0, 40.0)
st.subheader(f"Case {index + 1} of {len(cases)}")
show_slice_viewer(cases[index].read_bytes(), window)

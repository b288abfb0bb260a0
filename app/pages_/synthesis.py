"""Synthesis batches (researchers): launch a batch and watch its progress.

The batch runner (``turingct synth batch``) runs as a separate process, so a long GPU or CPU job
survives this page being closed; the page polls the job rows (``catalog.jobs``) every
2 s, in a fragment, only while a job is pending or running (or one was just launched).
"""

from __future__ import annotations

import time

import streamlit as st

from app import admin_ui, jobs, safe_text, state

login = state.require_login(*state.RESEARCH_ROLES)

from catalog import jobs as job_rows  # noqa: E402  (after the guard)
from core.errors import TuringCTError  # noqa: E402
from core.vocabulary import ORGANS  # noqa: E402
from synth_backend.registry import LEARNING_BASED, available_methods  # noqa: E402

POLL_KEY = "turingct_synth_poll_until"
POLL_SECONDS = 2.0
LAUNCH_GRACE_S = 30.0  # the new process needs a moment before its job row exists

st.title("Synthesis batches")
rows = admin_ui.staff_call(login, job_rows.list_jobs)
datasets = admin_ui.staff_call(login, job_rows.dataset_names)

with st.expander("Launch a batch", expanded=not rows):
    if not jobs.batch_available():
        st.warning(
            "The batch runner (`turingct synth batch`) is not installed in this "
            "version; synthesize with `turingct synth` on the command line."
        )
    if not datasets:
        st.info(
            "No dataset with healthy volumes yet: import one with `turingct data import "
            "PATH --format FORMAT`, or build the phantom cohort with `turingct phantom --out "
            "DIR` and import it with `turingct data import DIR --format atlas`."
        )
    with st.form("turingct_batch"):
        c1, c2 = st.columns(2)
        # modeling-based methods first: they run without weights
        method = c1.selectbox(
            "Method", sorted(available_methods(), key=lambda m: (m in LEARNING_BASED, m))
        )
        organ = c2.selectbox("Organ", list(ORGANS))
        dataset = st.selectbox("Healthy volumes from dataset", datasets or ["(none imported)"])
        c3, c4 = st.columns(2)
        count = c3.number_input("How many", 1, 10_000, 10)
        size = c4.selectbox("Tumor size", jobs.SIZES, index=1)
        c6, c7 = st.columns(2)
        device = c6.selectbox(
            "Device",
            ["auto", "cuda", "cpu"],
            help="auto: the GPU when CUDA is available, else the CPU",
        )
        seed = c7.number_input("Seed", 0, 2**31 - 1, 0)
        c8, c9 = st.columns(2)
        n_tumors = c8.number_input(
            "Number of tumors",
            min_value=1,
            max_value=100,
            value=None,
            step=1,
            placeholder="method default",
            help="tumors per volume (`--n-tumors`); empty: one for pixel2cancer and the "
            "learned methods, the method's own count for hand-crafted",
        )
        profile = c9.selectbox(
            "Hand-crafted profile",
            [None, *jobs.PROFILES],
            format_func=lambda p: "default (train)" if p is None else p,
            help="hand-crafted only (`--profile`): train (fast) or vtt (the paper's visual "
            "Turing test version: vessel avoidance, capsule, mass effect)",
        )
        checkpoint = st.text_input(
            "Checkpoint (learning-based methods: " + ", ".join(sorted(LEARNING_BASED)) + ")",
            help="path on this server of the trained weights (`turingct train ...`); leave "
            "empty for the modeling-based methods",
        )
        if st.form_submit_button("Launch", disabled=not jobs.batch_available() or not datasets):
            try:
                with admin_ui.staff_session(login):  # the role is re-read before launching
                    launched = jobs.launch_batch(
                        method=method,
                        organ=organ,
                        dataset=dataset,
                        count=int(count),
                        size=size,
                        device=device,
                        seed=int(seed),
                        checkpoint=checkpoint or None,
                        n_tumors=None if n_tumors is None else int(n_tumors),
                        profile=profile,
                    )
            except TuringCTError as exc:  # a LaunchError (a field) or no batch runner
                safe_text.error(exc)
            else:
                st.session_state[POLL_KEY] = time.monotonic() + LAUNCH_GRACE_S
                safe_text.success(
                    f"Batch started (process {launched.pid}); progress appears "
                    f"below. Outputs in {launched.out_dir}, log {launched.log}. "
                    "Launching the same choices again resumes it."
                )

polling = any(j.active for j in rows) or time.monotonic() < st.session_state.get(POLL_KEY, 0.0)


def _job_table() -> None:
    """Re-read the job rows (only this fragment reruns while polling)."""
    current = admin_ui.staff_call(login, job_rows.list_jobs)
    admin_ui.show_jobs(current)
    still = any(j.active for j in current) or time.monotonic() < st.session_state.get(POLL_KEY, 0.0)
    if polling and not still:
        st.rerun(scope="app")  # everything finished: redraw once without the timer


st.fragment(_job_table, run_every=POLL_SECONDS if polling else None)()

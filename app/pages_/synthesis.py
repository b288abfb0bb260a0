"""Synthesis batches (researchers): launch a batch and watch its progress.

The batch runner (``turingct synth batch``) runs as a separate process, so a long GPU or CPU job
survives this page being closed; the page polls the job rows in the database.
"""

from __future__ import annotations

import streamlit as st

from app import admin_ui, jobs, state

login = state.require_login(*state.RESEARCH_ROLES)

st.title("Synthesis batches")

with state.db_session() as session:
    admin_ui.require_staff(session, login)
    rows = jobs.list_jobs(session)
    datasets = jobs.dataset_names(session)

with st.expander("Launch a batch", expanded=not rows):
    if not jobs.batch_available():
        st.warning("The batch runner (`turingct synth batch`) is not installed in this "
                   "version; synthesize with `turingct synth` on the command line.")
    with st.form("turingct_batch"):
        from synth_backend.base import ORGANS
        from synth_backend.registry import available_methods

        c1, c2 = st.columns(2)
        method = c1.selectbox("Method", available_methods())
        organ = c2.selectbox("Organ", list(ORGANS))
        dataset = st.selectbox("Healthy volumes from dataset", datasets or ["(none imported)"])
        c3, c4 = st.columns(2)
        count = c3.number_input("How many", 1, 10_000, 10)
        size = c4.selectbox("Tumor size", jobs.SIZES, index=1)
        c6, c7 = st.columns(2)
        device = c6.selectbox("Device", ["auto", "cuda", "cpu"])
        seed = c7.number_input("Seed", 0, 2**31 - 1, 0)
        if st.form_submit_button("Launch", disabled=not jobs.batch_available() or not datasets):
            try:
                pid = jobs.launch_batch(method=method, organ=organ, dataset=dataset,
                                        count=int(count), size=size,
                                        device=device, seed=int(seed))
            except jobs.LaunchError as exc:
                st.error(str(exc))
            else:
                st.success(f"Batch started (process {pid}); progress appears below.")


@st.fragment(run_every=5)
def job_table() -> None:
    """Re-read the job rows every 5 s (only this fragment reruns)."""
    with state.db_session() as session:
        current = jobs.list_jobs(session)
    if not current:
        st.info("No synthesis batch yet.")
        return
    for job in current:
        st.progress(job["progress"], text=f"#{job['id']} {job['method']} · {job['organ']} · "
                    f"{job['status']} · {job['n_done']} done, {job['n_failed']} failed of "
                    f"{job['n_total']}")
    st.dataframe(current, hide_index=True, width="stretch")


job_table()

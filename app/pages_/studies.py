"""Studies (researchers): create from a spec file or a form, list, inspect, close, download CSVs."""

from __future__ import annotations

import streamlit as st

from app import admin_ui, safe_text, state
from app.secure_download import secure_download

login = state.require_login(*state.RESEARCH_ROLES)

from core.errors import TuringCTError  # noqa: E402
from core.vocabulary import ORGANS, StudyDesign  # noqa: E402
from studies import admin  # noqa: E402  (after the guard)
from studies.spec import DESIGNS, WINDOW_PRESETS  # noqa: E402

st.title("Studies")
PICK_KEY = "turingct_studies_pick"
REPICK_KEY = "turingct_studies_repick"  # (name, status) to keep open after close / reopen


def _invite_new_readers(session, actor, usernames) -> list[tuple[str, str]]:
    """(username, invite link) for each reader of the study who has no password yet (a name
    the study created an account for, or one never invited); earlier links are revoked."""
    from studies import accounts

    links = []
    for username in usernames:
        user = accounts.require_user(session, username)
        if user.password_hash is None and accounts.can_manage(actor, user.role):
            token = accounts.create_invite(session, user, actor=actor)
            links.append((username, accounts.invite_link(token, admin_ui.base_url())))
    return links


def _create(spec) -> None:
    """Build the blinded study (selection, export, audit, assignments) and report the audit."""
    try:
        with (
            st.spinner("Selecting cases, exporting blinded copies, running the blinding audit"),
            admin_ui.staff_session(login) as (session, user),
        ):
            study = admin.create_study(session, spec, actor=user, progress=False)
            name, audit = study.name, dict(study.audit or {})
            invites = _invite_new_readers(session, user, study.spec.get("readers", []))
    except TuringCTError as exc:  # spec, selection, export or access problem: one line
        safe_text.error(exc)
        return
    safe_text.success(f"Study {name!r} created.")
    if invites:
        st.warning(
            f"{len(invites)} reader name(s) had no account: accounts without a password "
            "were created. Send each reader their one-time invite link (shown once):"
        )
        st.dataframe(
            [{"reader": u, "invite link": link} for u, link in invites],
            hide_index=True,
            width="stretch",
        )
    admin_ui.show_audit(audit)
    admin_ui.show_size_match(audit.get("size_match"))
    admin_ui.preselect_study(PICK_KEY, name)


with st.expander("Create a study", expanded=False):
    from_file, from_form = st.tabs(["From a spec file", "From a form"])
    with from_file:
        st.caption("A YAML spec as in `studies/examples/` (one commented example per design).")
        upload = st.file_uploader(
            "Study spec (YAML)", type=["yaml", "yml"], key="turingct_spec_upload"
        )
        if upload is not None and st.button("Create study from file", key="turingct_create_file"):
            from studies.spec import parse_spec_bytes

            try:  # bounded: size, YAML aliases and expanded size are checked before anything
                spec = parse_spec_bytes(upload.getvalue(), source=upload.name)
            except TuringCTError as exc:
                safe_text.error(exc)
            else:
                _create(spec)
    with from_form, st.form("turingct_study_form"):
        name = st.text_input("Name")
        design = st.selectbox(
            "Design",
            DESIGNS,
            format_func=lambda d: {
                StudyDesign.TURING: "Turing test (real / synthetic / unsure)",
                StudyDesign.ORGAN_ORIGIN: "Organ origin (liver / pancreas / kidney / unsure)",
            }[d],
        )
        organs = st.multiselect("Organs", list(ORGANS), default=[ORGANS[0]])
        c1, c2 = st.columns(2)
        n_real = c1.number_input("Real cases per organ", 0, 500, 10)
        n_syn = c2.number_input("Synthetic cases per organ", 0, 500, 10)
        d1, d2 = st.columns(2)
        dmin = d1.number_input("Tumor diameter min (mm)", 0.0, 300.0, 5.0)
        dmax = d2.number_input("Tumor diameter max (mm)", 0.0, 300.0, 60.0)
        crop = st.text_input("Crop size around the tumor, mm (x, y, z)", "96, 96, 64")
        window = st.selectbox("Default window", list(WINDOW_PRESETS))
        readers = st.text_input("Readers (usernames, comma separated)")
        seed = st.number_input("Seed", 0, 2**31 - 1, 0)
        confidence = st.checkbox("Ask for confidence (1-5)", value=True)
        allow_changes = st.checkbox("Readers may change answers", value=False)
        educational = st.checkbox("Educational (show the truth after finishing)", value=False)
        if st.form_submit_button("Create study"):
            try:
                crop_size: list[float] | str = [float(v) for v in crop.replace(",", " ").split()]
            except ValueError:
                crop_size = crop  # the spec validator names the problem
            _create(
                {
                    "name": name.strip(),
                    "design": design,
                    "organs": organs,
                    "cases_per_organ": {"real": int(n_real), "synthetic": int(n_syn)},
                    "selection": {"tumor_diameter_mm": [dmin, dmax]},
                    "presentation": {
                        "crop": {"around": "tumor", "size": crop_size, "unit": "mm"},
                        "window": window,
                    },
                    "readers": [r.strip() for r in readers.split(",") if r.strip()],
                    "seed": int(seed),
                    "confidence": confidence,
                    "allow_changes": allow_changes,
                    "educational": educational,
                }
            )

with admin_ui.staff_session(login) as (session, user):
    summaries = admin.list_studies(session, user)
st.dataframe(admin_ui.as_records(summaries), hide_index=True, width="stretch")

if REPICK_KEY in st.session_state:  # the picker's label carries the status, which changed
    admin_ui.preselect_study(PICK_KEY, *st.session_state.pop(REPICK_KEY))
study = admin_ui.study_picker(login, key=PICK_KEY, label="Open study")
if study is None:
    st.stop()

with admin_ui.staff_session(login) as (session, user):
    details = admin.show_study(session, user, study.id)


def _key_csv() -> str:
    """Built only when the researcher asks for it (role checked in the service)."""
    assert study is not None  # the script stopped above otherwise
    with admin_ui.staff_session(login) as (session, user):
        return admin.rows_to_csv(admin.key_rows(session, user, study.id), admin.KEY_COLUMNS)


def _results_csv() -> str:
    assert study is not None  # the script stopped above otherwise
    with admin_ui.staff_session(login) as (session, user):
        return admin.rows_to_csv(admin.results_rows(session, user, study.id), admin.RESULT_COLUMNS)


safe_text.subheader(details["name"])
safe_text.caption(
    f"{details['design']} · {details['status']} · seed {details['seed']} · "
    f"export folder {details['export_dir']}"
)
st.markdown("**Cases per arm / organ / method**")
admin_ui.show_case_table(details["case_table"])
admin_ui.show_audit(details["audit"])
admin_ui.show_size_match(details["size_match"])
admin_ui.show_progress(details["progress"])

c1, c2, c3 = st.columns(3)
# No st.download_button: its bytes would sit at an unauthenticated /media/ URL (see
# app.secure_download); these build the CSV on click and hand it to this browser only.
secure_download(
    "Download key CSV",
    _key_csv,
    file_name=f"{details['name']}-key.csv",
    mime="text/csv",
    key="turingct_dl_key",
    container=c1,
    help="the unblinding key: which case is real or synthetic",
)
secure_download(
    "Download results CSV",
    _results_csv,
    file_name=f"{details['name']}-results.csv",
    mime="text/csv",
    key="turingct_dl_results",
    container=c2,
)
if details["status"] == "open":
    confirm = c3.checkbox("I want to close this study", key="turingct_close_confirm")
    if c3.button("Close study", disabled=not confirm, key="turingct_close"):
        with admin_ui.staff_session(login) as (session, user):
            admin.close_study(session, user, study.id)
        st.session_state[REPICK_KEY] = (details["name"], "closed")
        st.rerun()
elif c3.button(
    "Reopen study", key="turingct_reopen", help="readers can answer again; answers so far are kept"
):
    with admin_ui.staff_session(login) as (session, user):
        admin.reopen_study(session, user, study.id)
    st.session_state[REPICK_KEY] = (details["name"], "open")
    st.rerun()

assigned = [p["username"] for p in details["progress"]]
if assigned:
    with st.form("turingct_remove_reader"):
        st.markdown("**Remove a reader from this study**")
        st.caption(
            "Their cases are withdrawn; answers they already gave are kept in the "
            "results. Adding them again (Readers page) restores the same order."
        )
        gone = st.selectbox("Reader", assigned, key="turingct_remove_who")
        sure = st.checkbox("I want to remove this reader", key="turingct_remove_confirm")
        if st.form_submit_button("Remove reader"):
            if not sure:
                st.error("Tick 'I want to remove this reader' first.")
            else:
                try:
                    with admin_ui.staff_session(login) as (session, user):
                        done = admin.remove_reader(session, user, study.id, gone)
                except TuringCTError as exc:
                    safe_text.error(str(exc))
                else:
                    st.session_state[state.FLASH_KEY] = (
                        f"{done.username} removed from {done.study}: {done.withdrawn} cases "
                        f"withdrawn, {done.answers_kept} answers kept."
                    )
                    st.rerun()

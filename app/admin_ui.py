"""Shared widgets of the researcher pages (study picker, tables) and their role checks.

No SQL here: services only. Library functions that take an acting user check the role
themselves; for those that take none (``catalog.volumes.list_volumes``,
``catalog.jobs.list_jobs``, ``evaluation.study_data.study_votes``,
``evaluation.store.latest_results``) the pages go through :func:`staff_call`, which checks the
role with ``studies.accounts.require_role`` in the same session first. Every researcher page
opens its sessions through :func:`staff_session`, so the role is checked against the database
row on each action, not only against the login kept in session state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

from app import safe_text, state

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from db.models import User
    from studies.admin import StudySummary


T = TypeVar("T")


def as_records(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Dataclass rows (or dicts) as plain dicts for ``st.dataframe``."""
    return [asdict(r) if is_dataclass(r) and not isinstance(r, type) else dict(r) for r in rows]


@contextlib.contextmanager
def staff_session(login: state.Login) -> Iterator[tuple[Session, User]]:
    """One short session and the acting user's row, after checking in the database that the
    account is an active researcher or admin.

    The session-state login only says what the role *was* at login; an account demoted or
    disabled since then is refused here (``st.error`` + ``st.stop``), as is any
    :class:`~studies.errors.AccessDenied` raised by a service function inside the block.
    """
    from studies.accounts import require_role
    from studies.errors import AccessDenied

    try:
        with state.db_session() as session:
            user = state.load_user(session, login)
            require_role(user, *state.RESEARCH_ROLES)
            yield session, user
    except AccessDenied as exc:
        safe_text.error(f"Access denied: {exc}")
        st.stop()


def staff_call(login: state.Login, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``fn(session, *args, **kwargs)`` for a library function that takes no acting user, run in
    :func:`staff_session` (role checked first). ``fn`` must return plain data (dicts,
    dataclasses, DataFrames), never ORM rows: the session closes on return."""
    with staff_session(login) as (session, _user):
        return fn(session, *args, **kwargs)


def staff_call_by_id(user_id: int, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Like :func:`staff_call` for code that runs outside the page script (a deferred download
    callable runs on another thread, without session state): the user row is re-read by id
    and ``AccessDenied`` is raised (not shown) when it is not an active researcher or admin."""
    from db.models import User
    from studies.accounts import require_role

    with state.db_session() as session:
        require_role(session.get(User, user_id), *state.RESEARCH_ROLES)
        return fn(session, *args, **kwargs)


def base_url() -> str:
    """The app's address as the researcher's browser sees it (for invite links)."""
    from urllib.parse import urlparse

    try:
        parts = urlparse(st.context.url or "")
    except Exception:  # no browser context (tests)
        parts = None
    if parts and parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return "http://localhost:8501"


def study_picker(login: state.Login, *, key: str, label: str = "Study") -> StudySummary | None:
    """Select one of the studies (``StudySummary``); None (with a hint) when there is none."""
    from studies import admin

    with staff_session(login) as (session, user):
        studies = admin.list_studies(session, user)
    if not studies:
        st.info(
            "No study yet. Create one on the Studies page or with "
            "`turingct study create SPEC.yaml`."
        )
        return None
    by_label = {_study_label(s.name, s.status): s for s in reversed(studies)}
    choice = st.selectbox(label, list(by_label), key=key)
    return by_label[choice]


def _study_label(name: str, status: str) -> str:
    return f"{name} ({status})"


def preselect_study(key: str, name: str, status: str = "open") -> None:
    """Make the :func:`study_picker` with ``key`` (not drawn yet in this run) show study
    ``name``, e.g. the one just created."""
    st.session_state[key] = _study_label(name, status)


def show_progress(rows: list[Any]) -> None:
    """Per-reader progress table with a progress bar column."""
    if not rows:
        st.info("No reader is assigned to this study yet (Readers page).")
        return
    records = as_records(rows)
    for r in records:
        r["progress"] = r["answered"] / r["total"] if r["total"] else 0.0
    answered = sum(r["answered"] for r in records)
    total = sum(r["total"] for r in records)
    st.metric("Answers", f"{answered} / {total}")
    st.dataframe(
        records,
        hide_index=True,
        width="stretch",
        height="content",  # every reader, no scroll
        column_order=[
            "username",
            "years_experience",
            "answered",
            "total",
            "progress",
            "median_seconds",
            "last_answer_at",
        ],
        column_config={
            "username": "Reader",
            "years_experience": "Years",
            "progress": st.column_config.ProgressColumn(
                "Progress", min_value=0.0, max_value=1.0, format="percent"
            ),
            "median_seconds": st.column_config.NumberColumn("Median s / case", format="%.1f"),
            "last_answer_at": "Last answer (UTC)",
        },
    )


def show_audit(audit: dict[str, Any]) -> None:
    """Blinding audit (``studies.audit.AuditResult.to_dict()``): warn when AUC is not near 0.5."""
    if not audit:
        st.caption("No blinding audit stored for this study.")
        return
    auc, lo, hi = audit.get("auc"), audit.get("ci_low"), audit.get("ci_high")
    if auc is None:
        safe_text.warning(f"Blinding audit not run: {audit.get('warning')}")
        return
    text = (
        f"Blinding audit: AUC {auc:.2f} (95% CI {lo:.2f}-{hi:.2f}) on "
        f"{audit.get('n_real')} real + {audit.get('n_synthetic')} synthetic cases"
    )
    if audit.get("warning"):
        safe_text.warning(f"{text}. {audit['warning']}")
    else:
        safe_text.success(f"{text}: near chance, the arms look alike without the tumor.")
    if audit.get("size_auc") is not None:
        st.caption(
            f"Lesion size alone: AUC {audit['size_auc']:.2f} (Mann-Whitney p = "
            f"{audit['size_p_value']:.3f}); 0.5 = size tells nothing about the arm."
        )
    with st.expander("Audit details"):
        st.json({k: v for k, v in audit.items() if k != "size_match"})


def show_size_match(report: dict[str, Any] | None) -> None:
    """The achieved size match (``Study.audit['size_match']``): one line and, when the arms
    were paired, the pairs' diameters. Pair codes are left out: a pair names which case is
    real, which is the unblinding key's job."""
    from studies.matching import size_match_line

    if not report:
        return
    st.text(size_match_line(report))
    pairs = report.get("pairs") or []
    if pairs:
        with st.expander(f"Size-matched pairs ({len(pairs)})"):
            st.dataframe(
                [
                    {
                        "organ": p["organ"],
                        "method": p.get("method") or "",
                        "real mm": p["real_mm"],
                        "synthetic mm": p["synthetic_mm"],
                    }
                    for p in pairs
                ],
                hide_index=True,
                height="content",
            )


def show_case_table(rows: list[dict[str, Any]]) -> None:
    """Cases per arm / organ / method (``studies.admin.show_study()['case_table']``)."""
    st.dataframe(
        rows,
        hide_index=True,
        height="content",
        column_config={
            "arm": "Arm",
            "organ": "Organ",
            "method": "Method",
            "cases": st.column_config.NumberColumn("Cases"),
        },
    )


def show_jobs(rows: list[Any]) -> None:
    """Synthesis jobs (``catalog.jobs.JobRow``): a progress bar per pending/running job,
    the failures of each job in an expander, and a table of all jobs."""
    if not rows:
        st.info("No synthesis batch yet.")
        return
    for job in (j for j in rows if j.active):
        st.progress(job.progress, text=job.label())
    for job in (j for j in rows if j.reason):  # plain text: the reason may quote file paths
        safe_text.error(f"Job #{job.id} ({job.method} · {job.organ}) {job.status}: {job.reason}")
    for job in (j for j in rows if j.errors):
        with st.expander(f"Job #{job.id}: {len(job.errors)} failed item(s)"):
            st.dataframe(
                [
                    {"item": e.get("item"), "case": e.get("case"), "error": e.get("error")}
                    for e in job.errors
                ],
                hide_index=True,
                width="stretch",
            )
    records = as_records(rows)
    for r, job in zip(records, rows, strict=True):
        r["errors"] = len(r["errors"])
        r["done"] = job.done_fraction  # a job whose items all failed shows 0%, not 100%
        r["reason"] = job.reason or ""
    st.dataframe(
        records,
        hide_index=True,
        width="stretch",
        height="content",
        column_order=[
            "id",
            "method",
            "organ",
            "status",
            "done",
            "n_done",
            "n_failed",
            "n_total",
            "reason",
            "device",
            "seed",
            "created_at",
            "finished_at",
            "out_dir",
        ],
        column_config={
            "done": st.column_config.ProgressColumn(
                "Volumes made", min_value=0.0, max_value=1.0, format="percent"
            )
        },
    )

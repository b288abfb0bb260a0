"""Shared widgets of the researcher pages (study picker, tables). No SQL: services only."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, is_dataclass
from typing import Any

import streamlit as st

from app import state


def as_records(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """Dataclass rows (or dicts) as plain dicts for ``st.dataframe``."""
    return [asdict(r) if is_dataclass(r) else dict(r) for r in rows]


def require_staff(session, login: state.Login) -> None:
    """Service-level role check for pages whose library calls take no acting user."""
    from studies.accounts import require_role

    require_role(state.load_user(session, login), *state.RESEARCH_ROLES)


def study_picker(login: state.Login, *, key: str, label: str = "Study") -> Any | None:
    """Select one of the studies (``StudySummary``); None (with a hint) when there is none."""
    from studies import admin

    with state.db_session() as session:
        studies = admin.list_studies(session, state.load_user(session, login))
    if not studies:
        st.info("No study yet. Create one on the Studies page or with "
                "`turingct study create SPEC.yaml`.")
        return None
    by_label = {f"{s.name} ({s.status})": s for s in reversed(studies)}
    choice = st.selectbox(label, list(by_label), key=key)
    return by_label[choice]


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
        records, hide_index=True, width="stretch",
        column_order=["username", "years_experience", "answered", "total", "progress",
                      "median_seconds", "last_answer_at"],
        column_config={
            "username": "Reader", "years_experience": "Years",
            "progress": st.column_config.ProgressColumn("Progress", min_value=0.0,
                                                        max_value=1.0, format="percent"),
            "median_seconds": st.column_config.NumberColumn("Median s / case", format="%.1f"),
            "last_answer_at": "Last answer (UTC)",
        })


def show_audit(audit: dict[str, Any]) -> None:
    """Blinding audit (``studies.audit.AuditResult.to_dict()``): warn when AUC is not near 0.5."""
    if not audit:
        st.caption("No blinding audit stored for this study.")
        return
    auc, lo, hi = audit.get("auc"), audit.get("ci_low"), audit.get("ci_high")
    if auc is None:
        st.warning(f"Blinding audit not run: {audit.get('warning')}")
        return
    text = (f"Blinding audit: AUC {auc:.2f} (95% CI {lo:.2f}-{hi:.2f}) on "
            f"{audit.get('n_real')} real + {audit.get('n_synthetic')} synthetic cases")
    if audit.get("warning"):
        st.warning(f"{text}. {audit['warning']}")
    else:
        st.success(f"{text}: near chance, the arms look alike without the tumor.")
    with st.expander("Audit details"):
        st.json(audit)

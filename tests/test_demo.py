"""The main job end to end on a small phantom cohort: catalog, synthetic tumors of all four
methods (the learned ones in the liver), two blinded studies with their audit, a demo reader
who can log in."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from db.models import Arm, Origin, Study, StudyCase, SyntheticProvenance, Volume
from db.session import make_engine, session_scope
from synth_backend.phantom import PhantomConfig
from turingct.demo import run_demo


@pytest.mark.slow
def test_demo_builds_a_study_and_resumes(tmp_path, db_url):
    result = run_demo(
        tmp_path, db_url, n_cases=12, phantom_config=PhantomConfig.small(), progress=False
    )
    assert set(result.accounts) == {"demo", "researcher"}
    assert "AUC" in result.audit
    engine = make_engine(db_url)
    with session_scope(engine) as s:
        provs = s.scalars(select(SyntheticProvenance)).all()
        assert {(p.method, p.organ) for p in provs} == {
            (m, o) for m in ("handcrafted", "pixel2cancer") for o in ("liver", "pancreas", "kidney")
        } | {("difftumor", "liver"), ("tumorgen", "liver")}
        # the learned methods run from the shipped weights, named by hash in provenance
        assert all(p.checkpoint_hash for p in provs if p.method in ("difftumor", "tumorgen"))
        assert set(result.studies) == {"demo-turing", "demo-turing-learned"}
        main = s.scalars(select(StudyCase).join(Study).where(Study.name == "demo-turing")).all()
        assert len(main) == 12 and sum(c.arm == Arm.REAL for c in main) == 6
        learned = s.scalars(
            select(StudyCase).join(Study).where(Study.name == "demo-turing-learned")
        ).all()
        assert len(learned) == 6 and sum(c.arm == Arm.REAL for c in learned) == 2
        from studies.accounts import authenticate

        assert authenticate(s, "demo", result.accounts["demo"]).username == "demo"
    n_volumes = _count(engine)
    again = run_demo(
        tmp_path, db_url, n_cases=12, phantom_config=PhantomConfig.small(), progress=False
    )
    assert again.accounts == {} and _count(engine) == n_volumes
    assert "demo / " in (tmp_path / "demo-credentials.txt").read_text()
    engine.dispose()


def _count(engine):
    with session_scope(engine) as s:
        return (
            s.scalar(select(func.count(Volume.id))),
            s.scalar(select(func.count(Volume.id)).where(Volume.origin == Origin.SYNTHETIC)),
        )

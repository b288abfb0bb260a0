"""Reader orders: permutations, stable per reader, different between readers."""

from __future__ import annotations

from sqlalchemy import select

from db.models import Assignment, Study, User
from db.session import session_scope
from studies.assignment import assign, reader_order


def test_reader_order_is_a_stable_permutation():
    a = reader_order(30, 7, "ann")
    assert sorted(a) == list(range(30))
    assert a == reader_order(30, 7, "ann")  # stable across calls (and processes: no hash())
    assert a != reader_order(30, 7, "bob")
    assert a != reader_order(30, 8, "ann")


def test_assignments_stable_and_different(study):
    engine, study_id = study
    with session_scope(engine) as s:
        orders = {}
        for user in s.scalars(select(User).order_by(User.username)):
            rows = s.scalars(
                select(Assignment)
                .where(Assignment.reader_id == user.id)
                .order_by(Assignment.position)
            ).all()
            assert [r.position for r in rows] == list(range(6))
            orders[user.username] = [r.case_id for r in rows]
        assert sorted(orders["ann"]) == sorted(orders["bob"])
        assert orders["ann"] != orders["bob"]
        ann = s.scalar(select(User).where(User.username == "ann"))
        again = assign(s, s.get(Study, study_id), ann)  # idempotent
        assert [a.case_id for a in again] == orders["ann"]

"""Study input errors are InputError '<where>: <problem>; <fix>'; login/access ones are not."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.errors import InputError
from db.models import User
from db.session import session_scope
from studies import accounts, reading
from studies.accounts import OPERATOR
from studies.admin import get_study
from studies.dicom_export import export_study_dicom
from studies.errors import AccessDenied, AuthError, SelectionError, SpecError, StudyError
from studies.selection import select_cases
from studies.spec import load_spec, parse_spec, parse_spec_bytes
from tests.studies._catalog import spec_dict


def _parts(exc: InputError) -> tuple[str, str, str]:
    assert isinstance(exc, InputError)
    assert exc.where and exc.problem and exc.fix
    return str(exc.where), exc.problem, exc.fix


def test_spec_errors_keep_their_message(tmp_path):
    with pytest.raises(SpecError) as bad_bytes:
        parse_spec_bytes(b"\xff\xfe name: x", source="upload.yaml")
    assert _parts(bad_bytes.value) == (
        "upload.yaml",
        "is not a UTF-8 text file",
        "save it as UTF-8 YAML",
    )
    assert str(bad_bytes.value) == "upload.yaml: is not a UTF-8 text file; save it as UTF-8 YAML"

    with pytest.raises(SpecError) as bad_key:
        parse_spec(spec_dict(seed="x"), source="s.yaml")
    assert _parts(bad_key.value) == (
        "s.yaml",
        "seed must be an integer >= 0, got 'x'",
        "write a whole number",
    )
    assert (
        str(bad_key.value) == "s.yaml: seed must be an integer >= 0, got 'x'; write a whole number"
    )

    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as unread:
        load_spec(missing)
    assert unread.value.where == missing
    assert (
        str(unread.value) == f"{missing}: cannot read the spec (FileNotFoundError); check the path"
    )


def test_account_errors_gain_where(engine):
    with session_scope(engine) as s, pytest.raises(StudyError) as short:
        accounts.create_user(s, "ann", password="short")
    assert str(short.value) == (
        "new password: password must have at least 8 characters; choose a longer one"
    )
    _parts(short.value)

    with session_scope(engine) as s, pytest.raises(StudyError) as nobody:
        accounts.require_user(s, "nobody")
    where, problem, fix = _parts(nobody.value)
    assert (where, problem) == ("user 'nobody'", "no user 'nobody'")
    assert "turingct reader add --username nobody" in fix


def test_selection_and_lookup_errors_name_the_input(catalog):
    with session_scope(catalog) as s, pytest.raises(SelectionError) as few:
        select_cases(
            s, parse_spec(spec_dict(cases_per_organ={"real": 50, "synthetic": 3}), "big.yaml")
        )
    where, problem, fix = _parts(few.value)
    assert where == "big.yaml" and "asks for 50 cases" in problem and "lower the count" in fix
    assert str(few.value).startswith("big.yaml: cases_per_organ.real (liver) asks for 50 cases")

    with session_scope(catalog) as s, pytest.raises(StudyError) as unknown:
        get_study(s, OPERATOR, "nope")
    assert _parts(unknown.value)[:2] == ("study 'nope'", "no study 'nope'")


def test_reading_and_export_errors(study, tmp_path):
    engine, sid = study
    with session_scope(engine) as s:
        ann = s.scalar(select(User).where(User.username == "ann"))
        view = reading.current_case(s, ann, sid)
        with pytest.raises(StudyError) as bad_value:
            reading.submit_answer(
                s, ann, view.code, value="liver", idempotency_key=view.idempotency_key
            )
    assert _parts(bad_value.value) == (
        f"case {view.code}",
        "answer must be one of real, synthetic, unsure, got 'liver'",
        "pick one of those",
    )

    out = tmp_path / "taken"
    out.mkdir()
    (out / "x").write_text("x")
    with session_scope(engine) as s, pytest.raises(StudyError) as taken:
        export_study_dicom(s, OPERATOR, sid, out)
    assert (
        str(taken.value) == f"{out}: exists and is not an empty folder; choose a new --out folder"
    )
    _parts(taken.value)


def test_login_and_access_errors_are_not_input_errors(engine):
    with session_scope(engine) as s:
        accounts.create_user(s, "ann", password="long enough 1")
    with session_scope(engine) as s, pytest.raises(AuthError) as wrong:
        accounts.authenticate(s, "ann", "wrong password")
    with pytest.raises(AccessDenied) as denied:
        accounts.require_role(None, accounts.Role.ADMIN)
    assert not isinstance(wrong.value, InputError)
    assert not isinstance(denied.value, InputError)

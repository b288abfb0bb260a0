"""CLI end to end on a tiny catalog: create, reader add, answers, progress, key, results."""

from __future__ import annotations

import csv
import io

import pytest
import yaml
from sqlalchemy import select

from db.models import User
from db.session import session_scope
from studies import reading
from studies.accounts import authenticate
from tests.studies._catalog import spec_dict
from turingct.cli import main


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_study_cli_end_to_end(catalog, db_url, tmp_path, capsys, monkeypatch):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(readers=["ann"], confidence=True)))
    code, out, err = _run(
        capsys, "study", "create", spec, "--db", db_url, "--export-root", tmp_path / "exp"
    )
    assert code == 0, err
    assert "study 't1': 6 blinded cases" in out
    assert "blinding audit: AUC" in out and "permutation p =" in out
    assert "lesion size alone AUC" in out  # size reported as a separating feature
    assert "lesion size (selection.match: size): real " in out and "Mann-Whitney p =" in out
    assert "pairs (real mm -> synthetic mm): " in out
    assert "invite for ann (single use, 72 h): http://localhost:8501/?invite=" in out

    monkeypatch.setattr("sys.stdin", io.StringIO("carol password\n"))
    code, out, err = _run(
        capsys,
        "reader",
        "add",
        "--study",
        "t1",
        "--username",
        "carol",
        "--years",
        9,
        "--password-stdin",
        "--db",
        db_url,
    )
    assert code == 0, err
    assert "created reader 'carol'; assigned 6 cases" in out and "invite" not in out
    code, out, _ = _run(capsys, "reader", "add", "--username", "dan", "--db", db_url)
    assert "invite link (single use, 72 h): http://localhost:8501/?invite=" in out

    with session_scope(catalog) as s:  # carol answers 3 cases through the app's functions
        carol = authenticate(s, "carol", "carol password")
        for value in ("real", "synthetic", "unsure"):
            view = reading.current_case(s, carol, 1)
            reading.submit_answer(
                s,
                carol,
                view.code,
                value=value,
                confidence=4,
                window_width=400,
                window_level=40,
                idempotency_key=view.idempotency_key,
            )

    code, out, _ = _run(capsys, "study", "progress", "t1", "--db", db_url)
    assert code == 0 and "carol" in out and "ann" in out
    code, out, _ = _run(
        capsys, "study", "results", "t1", "--out", tmp_path / "a.csv", "--db", db_url
    )
    assert code == 0 and "3 answers written" in out
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert [r["answer"] for r in rows] == ["real", "synthetic", "unsure"]
    assert {r["reader"] for r in rows} == {"carol"} and {r["years_experience"] for r in rows} == {
        "9"
    }
    assert all(float(r["seconds_on_case"]) >= 0 and r["confidence"] == "4" for r in rows)
    assert all(r["arm"] in ("real", "synthetic") and r["displayed_at"] for r in rows)

    code, out, _ = _run(capsys, "study", "key", "1", "--out", tmp_path / "k.csv", "--db", db_url)
    key = list(csv.DictReader((tmp_path / "k.csv").open()))
    assert len(key) == 6 and {r["arm"] for r in key} == {"real", "synthetic"}
    assert {r["tumor_kind"] for r in key if r["arm"] == "real"} == {"phantom_lesion"}
    assert {r["code"] for r in rows} <= {r["code"] for r in key}

    code, out, _ = _run(capsys, "study", "list", "--db", db_url)
    assert code == 0 and "t1" in out
    code, out, _ = _run(capsys, "study", "show", "t1", "--db", db_url)
    assert code == 0 and '"real/liver": 3' in out
    assert '"size_match": {' in out and '"median_abs_diff_mm"' in out
    code, out, _ = _run(capsys, "study", "close", "t1", "--db", db_url)
    assert code == 0 and "closed" in out
    with session_scope(catalog) as s:
        carol = s.scalar(select(User).where(User.username == "carol"))
        assert reading.current_case(s, carol, 1) is None
    code, out, _ = _run(capsys, "study", "reopen", "t1", "--db", db_url)
    assert code == 0 and "open again" in out
    with session_scope(catalog) as s:
        carol = s.scalar(select(User).where(User.username == "carol"))
        assert reading.current_case(s, carol, 1) is not None
    code, out, _ = _run(capsys, "study", "remove-reader", "t1", "carol", "--db", db_url)
    assert code == 0 and "carol removed from study 't1': 6 cases withdrawn, 3 answers kept" in out
    code, _, err = _run(capsys, "study", "remove-reader", "t1", "carol", "--db", db_url)
    assert code == 2 and "not one of its readers" in err


def test_cli_errors_are_one_line(catalog, db_url, tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text(yaml.safe_dump(spec_dict(colour="red")))
    code, _, err = _run(capsys, "study", "create", spec, "--db", db_url)
    assert code == 2 and err.count("\n") == 1 and "unknown key colour" in err
    spec.write_text(yaml.safe_dump(spec_dict(cases_per_organ={"real": 50, "synthetic": 1})))
    code, _, err = _run(capsys, "study", "create", spec, "--db", db_url)
    assert code == 2 and "asks for 50 cases but the catalog has 4" in err
    code, _, err = _run(capsys, "study", "show", "nope", "--db", db_url)
    assert code == 2 and "no study 'nope'" in err


def test_reader_account_actions_from_the_cli(engine, db_url, capsys):
    from studies import accounts, sessions
    from studies.errors import AuthError

    with session_scope(engine) as s:
        ann = accounts.create_user(s, "ann", "ann password")
        token = sessions.start(s, ann)
    first = _run(capsys, "reader", "invite", "--username", "ann", "--db", db_url)[1]
    _run(capsys, "reader", "invite", "--username", "ann", "--db", db_url)
    code, out, _ = _run(capsys, "reader", "revoke", "--username", "ann", "--db", db_url)
    assert code == 0 and out.strip() == "ann: 1 open invite link(s) revoked"  # the 1st: replaced
    with pytest.raises(AuthError, match="no longer valid"), session_scope(engine) as s:
        accounts.redeem_invite(s, first.split("invite=")[1].strip(), "new password 1")
    for _ in range(accounts.MAX_FAILURES):
        with pytest.raises(AuthError), session_scope(engine) as s:
            accounts.authenticate(s, "ann", "wrong one", "x")
    code, out, _ = _run(capsys, "reader", "unlock", "--username", "ann", "--db", db_url)
    assert out.strip() == "ann: login locks lifted (1 address(es))"
    code, out, _ = _run(capsys, "reader", "deactivate", "--username", "ann", "--db", db_url)
    assert code == 0 and out.strip() == "ann: deactivated"
    with session_scope(engine) as s:
        assert sessions.resume(s, token) is None
        assert not s.scalar(select(User).where(User.username == "ann")).is_active
    assert _run(capsys, "reader", "reactivate", "--username", "ann", "--db", db_url)[0] == 0
    code, _, err = _run(capsys, "reader", "unlock", "--username", "nobody", "--db", db_url)
    assert code == 2 and "no user 'nobody'" in err

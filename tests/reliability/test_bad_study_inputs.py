"""Malformed study inputs through the CLI: one-line error naming the input and the fix,
exit code 2, and nothing changed in the database or the output folders.

Study specs (``turingct study create``): unknown keys, wrong types, bad YAML, not UTF-8,
more cases than the catalog holds. Vote CSVs (``turingct evaluate readers --votes``): missing
columns, empty, not UTF-8, values outside the answer set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from db.models import Answer, Assignment, Study, StudyCase, User
from db.session import session_scope
from tests.studies._catalog import build_catalog, spec_dict
from turingct.cli import main


def _yaml(**over) -> str:
    return yaml.safe_dump(spec_dict(**over), sort_keys=False)


def _nested(path: str, value) -> str:
    spec = spec_dict()
    *parents, leaf = path.split(".")
    node = spec
    for p in parents:
        node = node[p]
    node[leaf] = value
    return yaml.safe_dump(spec, sort_keys=False)


# (case id, file content (str or bytes), words the error must contain besides the file name)
BAD_SPECS = [
    ("unknown-top-key", _yaml(readerz=["ann"]), ["unknown key", "readerz", "allowed keys"]),
    ("unknown-nested-key", _nested("presentation.windw", "liver"), ["unknown key", "windw"]),
    ("count-is-text", _nested("cases_per_organ.real", "three"), ["cases_per_organ.real"]),
    ("organs-not-list", _yaml(organs=3), ["organs"]),
    ("seed-is-float", _yaml(seed=1.5), ["seed"]),
    ("bool-as-text", _yaml(allow_changes="yes"), ["allow_changes", "true or false"]),
    ("unknown-organ", _yaml(organs=["lung"]), ["organs", "lung"]),
    ("unknown-design", _yaml(design="turin"), ["design", "turing"]),
    ("window-not-a-preset", _nested("presentation.window", "brain"), ["window"]),
    ("negative-spacing", _nested("presentation.spacing_mm", -1.5), ["spacing_mm"]),
    ("too-many-real", _yaml(cases_per_organ={"real": 10, "synthetic": 3}), ["real"]),
    ("too-many-synthetic", _yaml(cases_per_organ={"real": 3, "synthetic": 40}), ["synthetic"]),
    ("bad-yaml", "name: t1\ndesign: [turing\n", ["YAML"]),
    ("list-not-mapping", "- name: t1\n- design: turing\n", ["mapping"]),
    ("empty-file", "", []),
    ("not-utf8", b"name: \xff\xfe t1\ndesign: turing\n", []),
]


def _state(engine, roots: list[Path]) -> tuple:
    """Everything a failed command must leave untouched: row counts and folder listings."""
    with session_scope(engine) as s:
        counts = tuple(
            s.scalar(select(func.count(m.id))) for m in (Study, StudyCase, Assignment, Answer, User)
        )
    files = tuple(sorted(str(p.relative_to(r)) for r in roots if r.exists() for p in r.rglob("*")))
    return counts, files


def _one_line_error(capsys, *must: str) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    low = err.lower()
    for word in must:
        assert word.lower() in low, (word, err)
    assert ";" in err, f"no fix given: {err}"  # '<what is wrong>; <what to do>'
    return err


@pytest.fixture
def catalog_db(engine, db_url, tmp_path):
    """4 real + 4 synthetic liver volumes in a fresh database; returns (engine, url)."""
    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "cat")
    return engine, db_url


@pytest.mark.parametrize(("name", "content", "words"), BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_is_refused_in_one_line_and_changes_nothing(
    catalog_db, tmp_path, capsys, name, content, words
):
    engine, url = catalog_db
    spec = tmp_path / f"{name}.yaml"
    if isinstance(content, bytes):
        spec.write_bytes(content)
    else:
        spec.write_text(content, encoding="utf-8")
    export = tmp_path / "exports"
    export.mkdir()
    before = _state(engine, [export])
    rc = main(["study", "create", str(spec), "--db", url, "--export-root", str(export)])
    assert rc == 2
    _one_line_error(capsys, spec.name, *words)
    assert _state(engine, [export]) == before


def test_missing_spec_file(catalog_db, tmp_path, capsys):
    engine, url = catalog_db
    before = _state(engine, [tmp_path / "exports"])
    missing = tmp_path / "no-such-spec.yaml"
    assert (
        main(
            [
                "study",
                "create",
                str(missing),
                "--db",
                url,
                "--export-root",
                str(tmp_path / "exports"),
            ]
        )
        == 2
    )
    _one_line_error(capsys, missing.name)
    assert _state(engine, [tmp_path / "exports"]) == before


def test_valid_spec_after_failures_still_builds(catalog_db, tmp_path, capsys):
    """The refusals above leave nothing behind that blocks a correct spec afterwards."""
    engine, url = catalog_db
    export = tmp_path / "exports"
    bad = tmp_path / "bad.yaml"
    bad.write_text(_yaml(cases_per_organ={"real": 10, "synthetic": 3}), encoding="utf-8")
    assert main(["study", "create", str(bad), "--db", url, "--export-root", str(export)]) == 2
    good = tmp_path / "good.yaml"
    good.write_text(_yaml(), encoding="utf-8")
    assert main(["study", "create", str(good), "--db", url, "--export-root", str(export)]) == 0
    with session_scope(engine) as s:
        assert s.scalar(select(func.count(StudyCase.id))) == 6
    assert [p.name for p in export.iterdir()] == ["study-00001"]


GOOD_VOTES = (
    "reader,case,organ,truth,answer\n"
    "ann,c1,liver,real,real\nann,c2,liver,synthetic,real\n"
    "bob,c1,liver,real,synthetic\nbob,c2,liver,synthetic,synthetic\n"
)

BAD_VOTES = [
    ("missing-truth", "reader,case,organ,answer\nann,c1,liver,real\n", ["truth"]),
    ("missing-answer", "reader,case,organ,truth\nann,c1,liver,real\n", ["answer"]),
    ("missing-reader", "case,organ,truth,answer\nc1,liver,real,real\n", ["reader"]),
    ("empty", "", []),
    ("header-only", "reader,case,organ,truth,answer\n", []),
    (
        "answer-outside-set",
        GOOD_VOTES.replace("ann,c1,liver,real,real", "ann,c1,liver,real,maybe"),
        ["maybe"],
    ),
    (
        "truth-outside-set",
        GOOD_VOTES.replace("ann,c1,liver,real,real", "ann,c1,liver,fake,real"),
        ["fake"],
    ),
    ("not-utf8", b"reader,case,organ,truth,answer\n\xff\xfeann,c1,liver,real,real\n", []),
    ("ragged-row", "reader,case,organ,truth,answer\nann,c1,liver,real,real,extra,more\n", []),
]


@pytest.mark.parametrize(("name", "content", "words"), BAD_VOTES, ids=[c[0] for c in BAD_VOTES])
def test_bad_votes_csv_is_refused_and_writes_nothing(tmp_path, capsys, name, content, words):
    votes = tmp_path / f"{name}.csv"
    if isinstance(content, bytes):
        votes.write_bytes(content)
    else:
        votes.write_text(content, encoding="utf-8")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc = main(["evaluate", "readers", "--votes", str(votes), "--out", str(out_dir / "t.csv")])
    assert rc == 2
    _one_line_error(capsys, votes.name, *words)
    assert list(out_dir.iterdir()) == []


def test_good_votes_csv_passes(tmp_path):
    """Control: the same command on a well-formed file succeeds and writes its table."""
    votes = tmp_path / "votes.csv"
    votes.write_text(GOOD_VOTES, encoding="utf-8")
    out = tmp_path / "out" / "t.csv"
    out.parent.mkdir()
    assert main(["evaluate", "readers", "--votes", str(votes), "--out", str(out)]) == 0
    assert out.is_file()

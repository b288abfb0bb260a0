"""`turingct synth replay`: every registered method re-runs from its provenance.json to the same
volume, and a replay refuses inputs or a checkpoint that are not the recorded ones."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from synth_backend.io import save_volume
from synth_backend.registry import registered_methods
from tests.synth_backend._generative_data import limit_torch_threads, make_case
from turingct.cli import main

one_thread = pytest.fixture(autouse=True, scope="module")(limit_torch_threads)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay-case")
    ct, liver, _, affine = make_case(7)
    save_volume(np.rint(ct), affine, root / "ct.nii.gz", "ct")
    save_volume(liver, affine, root / "liver.nii.gz", "mask")
    return root


def _synth(case, out, method, *extra) -> int:
    return main(
        ["synth", "--method", method, "--organ", "liver", "--ct", str(case / "ct.nii.gz"),
         "--organ-mask", str(case / "liver.nii.gz"), "--out", str(out), "--seed", "5",
         "--device", "cpu", "--size", "tiny", *extra]
    )  # fmt: skip


@pytest.mark.parametrize("method", registered_methods())
def test_every_method_replays_from_its_provenance(method, case, tmp_path, capsys):
    extra = ("--n-tumors", "2") if method in ("handcrafted", "difftumor") else ()
    assert _synth(case, tmp_path / "a", method, *extra) == 0
    capsys.readouterr()
    assert main(["synth", "replay", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "ct and tumor mask identical" in out
    original = json.loads((tmp_path / "a" / "provenance.json").read_text())
    replayed = json.loads((tmp_path / "b" / "provenance.json").read_text())
    assert replayed["params"] == original["params"] and replayed["seed"] == original["seed"]
    assert replayed["checkpoint_hash"] == original["checkpoint_hash"]
    assert replayed["replay_of"]["path"] == str((tmp_path / "a").resolve())
    assert replayed["replay_of"]["outputs"] == original["outputs"]


def test_replay_refuses_changed_inputs_and_says_so_in_one_line(case, tmp_path, capsys):
    own = tmp_path / "case"
    shutil.copytree(case, own)
    assert main(
        ["synth", "--method", "handcrafted", "--organ", "liver", "--ct", str(own / "ct.nii.gz"),
         "--organ-mask", str(own / "liver.nii.gz"), "--out", str(tmp_path / "a"), "--seed", "1",
         "--size", "tiny"]
    ) == 0  # fmt: skip
    capsys.readouterr()
    # the replay may not overwrite what it replays
    assert main(["synth", "replay", str(tmp_path / "a"), "--out", str(tmp_path / "a")]) == 2
    assert "is the folder being replayed" in capsys.readouterr().err
    # a mask edited after the synthesis: refused, nothing written
    mask = own / "liver.nii.gz"
    mask.write_bytes(mask.read_bytes() + b"\0")
    assert main(["synth", "replay", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{mask}: the organ mask changed since the synthesis (sha256 differs)" in err
    assert not (tmp_path / "b").exists()
    mask.unlink()
    assert main(["synth", "replay", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2
    assert "the organ mask this synthesis used is missing" in capsys.readouterr().err


def test_replay_refuses_a_broken_or_foreign_provenance(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    assert main(["synth", "replay", str(tmp_path / "x"), "--out", str(tmp_path / "y")]) == 2
    assert "has no provenance.json" in capsys.readouterr().err
    (tmp_path / "x" / "provenance.json").write_text("{not json")
    assert main(["synth", "replay", str(tmp_path / "x"), "--out", str(tmp_path / "y")]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
    (tmp_path / "x" / "provenance.json").write_text(json.dumps({"method": "handcrafted"}))
    assert main(["synth", "replay", str(tmp_path / "x"), "--out", str(tmp_path / "y")]) == 2
    assert "lacks organ, seed, params, inputs" in capsys.readouterr().err


def test_replay_reports_a_difference_with_exit_1(case, tmp_path, capsys):
    assert _synth(case, tmp_path / "a", "handcrafted") == 0
    prov = tmp_path / "a" / "provenance.json"
    manifest = json.loads(prov.read_text())
    manifest["params"]["tumors"][0]["center"][0] += 1  # as if drawn elsewhere
    prov.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["synth", "replay", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "differs: ct" in out and "voxel(s)" in out


def test_replay_refuses_params_of_another_shape_in_one_line(case, tmp_path, capsys):
    assert _synth(case, tmp_path / "a", "handcrafted") == 0
    prov = tmp_path / "a" / "provenance.json"
    manifest = json.loads(prov.read_text())
    del manifest["params"]["tumors"][0]["radii_mm"]  # as if written by another version
    prov.write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["synth", "replay", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "params do not fit this version" in err
    manifest["method"] = "nosuchmethod"
    prov.write_text(json.dumps(manifest))
    assert main(["synth", "replay", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2
    assert "nosuchmethod" in capsys.readouterr().err

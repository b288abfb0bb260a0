"""The app's input errors share one shape: InputError(where, problem, fix).

Each case goes through a public function with a bad input, as the pages and the CLI do; the
pages print ``str(exc)``, so the message is what the user reads.
"""

from __future__ import annotations

import pytest

from app import jobs
from app.server import streamlit_command
from app.slice_viewer import parse_vote, unpack_payload
from app.viewer import Window, prepare_volume, preset_window
from core.errors import InputError, TuringCTError

CHOICES = (("Real", "real"), ("Synthetic", "synthetic"))


def _launch(tmp_path, **changes):
    choices = {
        "method": "handcrafted",
        "organ": "liver",
        "dataset": "d",
        "count": 1,
        "size": "small",
        "device": "cpu",
        "seed": 0,
        "out_dir": tmp_path,
        "database_url": "sqlite://",
        **changes,
    }
    return jobs.batch_command(**choices)


def _shaped(exc: BaseException) -> InputError:
    assert isinstance(exc, InputError)
    assert exc.where and exc.problem and exc.fix
    assert str(exc) == f"{exc.where}: {exc.problem}; {exc.fix}"
    assert "\n" not in str(exc)
    return exc


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"method": "nope"}, "Method"),
        ({"organ": "spleen"}, "Organ"),
        ({"size": "huge"}, "Tumor size"),
        ({"device": "tpu"}, "Device"),
        ({"count": 0}, "How many"),
        ({"n_tumors": 0}, "Number of tumors"),
        ({"profile": "fancy"}, "Hand-crafted profile"),
        ({"method": "pixel2cancer", "profile": "vtt"}, "Hand-crafted profile"),
        ({"method": "difftumor"}, "Checkpoint"),
        ({"checkpoint": "w.pt"}, "Checkpoint"),
    ],
)
def test_a_bad_launch_choice_names_its_form_field(tmp_path, changes, where):
    with pytest.raises(jobs.LaunchError) as err:
        _launch(tmp_path, **changes)
    assert _shaped(err.value).where == where


def test_launch_messages_keep_their_text_and_gain_the_missing_parts(tmp_path):
    with pytest.raises(jobs.LaunchError) as err:
        _launch(tmp_path, size="huge")
    # the old message already had its fix ("; pick one"): it gains only the field
    assert str(err.value) == (
        "Tumor size: must be one of ('tiny', 'small', 'medium', 'large'), got 'huge'; pick one"
    )
    missing = tmp_path / "gone.pt"
    with pytest.raises(jobs.LaunchError) as err:
        _launch(tmp_path, method="difftumor", checkpoint=str(missing))
    # already '<where>: <problem>; <fix>': unchanged, byte for byte
    assert str(_shaped(err.value)) == (
        f"{missing}: checkpoint file does not exist on this server; check the path"
    )


def test_a_missing_batch_runner_is_not_an_input_error(monkeypatch):
    monkeypatch.setattr(jobs, "batch_available", lambda: False)
    with pytest.raises(TuringCTError) as err:
        jobs.launch_batch(method="handcrafted", organ="liver", seed=0)
    assert not isinstance(err.value, InputError)
    assert str(err.value) == "the batch runner is not installed; update turingct"


def test_viewer_inputs_are_input_errors():
    with pytest.raises(ValueError) as err:  # still a ValueError for callers that catch it
        Window(0, 40)
    assert _shaped(err.value).where == "window"
    assert str(err.value) == (
        "window: width must be > 0 HU, got 0; pick a preset or type a positive width"
    )
    with pytest.raises(InputError) as err:
        preset_window("Custom")
    _shaped(err.value)
    with pytest.raises(InputError) as err:
        prepare_volume(b"not a nifti file at all")
    # the volume is never named by file: the message may reach the reader's browser
    assert _shaped(err.value).where == "case volume"
    with pytest.raises(InputError) as err:
        unpack_payload(b"TC")
    assert _shaped(err.value).where == "payload"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        {"value": "maybe"},
        {"value": "real", "confidence": 9},
        {"value": "real", "width": 0, "level": 40, "visible_s": 2, "ballot": 1},
    ],
)
def test_a_bad_vote_is_an_input_error_named_vote(raw):
    with pytest.raises(InputError) as err:
        parse_vote(raw, CHOICES)
    assert _shaped(err.value).where == "vote"


def test_a_bad_port_is_an_input_error():
    with pytest.raises(ValueError) as err:
        streamlit_command(port=0)
    assert _shaped(err.value).where == "--port"
    assert str(err.value) == "--port: must be in 1-65535, got 0; pick a free port"

"""Study spec validation: examples load, bad keys/types give one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from studies.errors import SpecError
from studies.spec import load_spec, parse_spec, parse_spec_text
from tests.studies._catalog import spec_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "studies" / "examples"


@pytest.mark.parametrize("name", ["turing_demo.yaml", "organ_origin.yaml"])
def test_examples_load_and_round_trip(name):
    spec = load_spec(EXAMPLES / name)
    again = parse_spec(spec.to_dict(), source=spec.source)
    assert again == spec


def test_choices_follow_design():
    turing = parse_spec(spec_dict())
    assert [v for _, v in turing.choices] == ["real", "synthetic", "unsure"]
    assert turing.question == "truth"
    origin = parse_spec(spec_dict(design="organ_origin", organs=["liver", "kidney"]))
    assert origin.choices == (("Liver", "liver"), ("Kidney", "kidney"), ("Unsure", "unsure"))
    assert origin.question == "origin"


def test_defaults_and_units():
    spec = parse_spec(spec_dict())
    assert spec.presentation.spacing_mm == (1.5, 1.5, 1.5)  # scalar -> isotropic
    assert spec.presentation.window.range == (15.0, 165.0)  # liver W150/L90
    assert spec.synthetic == {"any": 3}
    assert not spec.allow_changes and not spec.confidence


def test_synthetic_per_method():
    spec = parse_spec(spec_dict(cases_per_organ={"real": 2, "synthetic": {"a": 1, "b": 2}}))
    assert spec.synthetic == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"colour": "red"}, "unknown key colour"),
        (
            {"presentation": {"crop": {"size": 20, "shape": 3}}},
            "unknown key presentation.crop.shape",
        ),
        ({"seed": "abc"}, "seed must be an integer >= 0, got 'abc'"),
        ({"seed": True}, "seed must be an integer"),
        ({"allow_changes": "yes"}, "allow_changes must be true or false"),
        ({"organs": ["brain"]}, "organs[0] must be one of liver, pancreas, kidney"),
        ({"design": "turning"}, "design must be one of turing, organ_origin"),
        ({"cases_per_organ": {"real": -1, "synthetic": 3}}, "cases_per_organ.real must be an int"),
        ({"cases_per_organ": {"real": 0, "synthetic": 3}}, "at least 1 real and 1 synthetic"),
        ({"cases_per_organ": {"real": 2}}, "cases_per_organ.synthetic is missing"),
        ({"presentation": {"spacing_mm": [1, 1]}}, "presentation.spacing_mm must be a number or"),
        ({"presentation": {"spacing_mm": [1, 0, 1]}}, "presentation.spacing_mm[1] must be a pos"),
        ({"presentation": {"window": "brain"}}, "presentation.window must be one of abdomen"),
        ({"selection": {"tumor_diameter_mm": [30, 10]}}, "min <= max"),
        ({"readers": "ann"}, "readers must be a list of usernames"),
        ({"readers": ["ann", "ann"]}, "readers must be a list without repeats"),
        ({"name": "../etc"}, "name must be 1-200 letters"),
        ({"design": "organ_origin"}, "at least 2 organs for design organ_origin"),
    ],
)
def test_bad_specs_are_rejected_with_the_key(overrides, fragment):
    with pytest.raises(SpecError) as err:
        parse_spec(spec_dict(**overrides), source="s.yaml")
    msg = str(err.value)
    assert msg.startswith("s.yaml: ") and fragment in msg
    assert "\n" not in msg and ";" in msg  # one line: what is wrong; what to do


def test_not_a_mapping_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="spec must be a mapping"):
        parse_spec([1, 2])
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n  design: [turing\n")
    with pytest.raises(SpecError, match=r"bad.yaml: is not valid YAML at line \d"):
        load_spec(bad)
    with pytest.raises(SpecError, match="cannot read the spec"):
        load_spec(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="cases_per_organ is missing"):
        parse_spec_text("design: turing\n")


def test_reading_settings_default_and_bounds():
    from studies.spec import Reading

    spec = parse_spec({k: v for k, v in spec_dict().items() if k != "reading"})
    assert spec.reading == Reading(min_seconds_on_case=1.0, idle_seconds=60.0)
    assert spec.to_dict()["reading"] == {"min_seconds_on_case": 1.0, "idle_seconds": 60.0}
    assert (
        parse_spec(spec_dict(reading={"min_seconds_on_case": 0})).reading.min_seconds_on_case == 0.0
    )
    for reading, match in (
        ({"min_seconds_on_case": -1}, "reading.min_seconds_on_case must be 0-60 seconds"),
        ({"min_seconds_on_case": 61}, "0-60 seconds"),
        ({"min_seconds_on_case": "1"}, "must be a number"),
        ({"idle_seconds": 1}, "reading.idle_seconds must be 5-3600"),
        ({"idle": 5}, "unknown key reading.idle"),
    ):
        with pytest.raises(SpecError, match=match):
            parse_spec(spec_dict(reading=reading), source="s.yaml")

"""The ground floor: one error shape for every input error, the vocabulary defined once."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError, TuringCTError
from core.vocabulary import ORGANS, QUESTIONS, SIZES, Organ, SizeClass, StudyDesign
from evaluation.tables import EvaluationInputError
from synth_backend.errors import OrganTooSmallError, SynthesisInputError, VolumeError


@pytest.mark.parametrize(
    ("error", "anonymous"),
    [
        (VolumeError("ct.nii.gz", "is empty", "export it again"), VolumeError(None, "p", "f")),
        (
            EvaluationInputError("v.csv", "is empty", "export it again"),
            EvaluationInputError(None, "p", "f"),
        ),
        (
            SynthesisInputError("ct.nii.gz", "is empty", "export it again"),
            SynthesisInputError(None, "p", "f"),
        ),
    ],
)
def test_every_input_error_is_one_type_with_one_message_shape(error, anonymous):
    assert isinstance(error, InputError) and isinstance(error, TuringCTError)
    assert isinstance(error, ValueError)  # callers that catch ValueError keep working
    assert str(error).endswith(": is empty; export it again")
    assert (error.problem, error.fix) == ("is empty", "export it again")
    assert str(Path(str(error.where))) in ("ct.nii.gz", "v.csv")
    # the placeholder for an input without a name is the one each type printed before
    assert str(anonymous) in ("<array>: p; f", "<table>: p; f")


def test_synthesis_error_keeps_its_subclass_and_fields_when_naming_the_case():
    named = OrganTooSmallError(None, "too small", "use a smaller size").for_case("case_3")
    assert type(named) is OrganTooSmallError
    assert named.case == named.where == "case_3"
    assert str(named) == "case_3: too small; use a smaller size"


def test_vocabulary_values_in_canonical_order():
    assert ORGANS == ("liver", "pancreas", "kidney") == tuple(Organ)
    assert SIZES == ("tiny", "small", "medium", "large") == tuple(SizeClass)
    assert QUESTIONS == {"turing": "truth", "origin": "origin"}


def test_database_and_ground_floor_share_the_design_enum():
    from db.models import Study

    assert Study.__table__.c.design.type.enums == [d.value for d in StudyDesign]


def test_unknown_method_is_a_one_line_project_error():
    from synth_backend.registry import UnknownMethodError, get_synthesizer, registered_methods

    with pytest.raises(UnknownMethodError) as info:
        get_synthesizer("nope")
    assert isinstance(info.value, TuringCTError) and isinstance(info.value, KeyError)
    assert str(info.value) == (
        "method 'nope': is not a registered synthesis method; use one "
        f"of {', '.join(registered_methods())}"
    )


def test_cli_choices_come_from_the_registry_and_vocabulary():
    from synth_backend.registry import registered_methods
    from turingct.cli import synth_cmd

    assert registered_methods() == synth_cmd.METHODS
    assert synth_cmd.ORGANS is ORGANS and synth_cmd.SIZES is SIZES


# The project's errors that are not about an input, each for its reason; every other
# TuringCTError subclass must be an InputError (where, problem, fix).
NOT_INPUT_ERRORS = {
    "AccessDenied": "a role or assignment check",
    "AuthError": "authentication (password, lockout, session)",
    "DatabaseError": "database state (no schema, cannot connect, driver missing)",
    "RayMissingError": "a missing optional backend",
}


def _error_classes() -> dict[str, list[str]]:
    """Every class defined in the project's packages -> the names of its bases (read with ast,
    as tests/test_layers.py reads imports, so no page or model module has to be imported)."""
    import ast

    root = Path(__file__).resolve().parent.parent
    classes: dict[str, list[str]] = {}
    for package in ("core", "db", "synth_backend", "catalog", "studies", "evaluation", "app",
                    "turingct"):  # fmt: skip
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ClassDef):
                    classes[node.name] = [
                        b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")
                        for b in node.bases
                    ]
    return classes


def test_every_project_error_about_an_input_is_an_input_error():
    classes = _error_classes()

    def descends(name: str, target: str) -> bool:
        return name == target or any(descends(b, target) for b in classes.get(name, ()))

    errors = {n for n in classes if descends(n, "TuringCTError")} - {"TuringCTError"}
    assert len(errors) > 20  # the walk found the project's errors
    free_form = {n for n in errors if not descends(n, "InputError")}
    assert free_form == set(NOT_INPUT_ERRORS), (
        "make these InputError(where, problem, fix) subclasses, or list them with a reason: "
        f"{sorted(free_form ^ set(NOT_INPUT_ERRORS))}"
    )

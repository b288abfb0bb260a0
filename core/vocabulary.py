"""The words the whole project shares, defined once: organs, size classes, study designs, the
question each design asks and the answers a reader can give.

The enums are ``StrEnum`` so they compare equal to (and store as) their plain values; the
tuples are the values in their canonical order, for argparse choices and table columns.
"""

from __future__ import annotations

import enum


class Organ(enum.StrEnum):
    LIVER = "liver"
    PANCREAS = "pancreas"
    KIDNEY = "kidney"


class SizeClass(enum.StrEnum):
    """Tumor size classes of the hand-crafted reference (diameter ranges in its params)."""

    TINY = "tiny"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


class StudyDesign(enum.StrEnum):
    TURING = "turing"  # real or synthetic?
    ORGAN_ORIGIN = "organ_origin"  # which organ does this tumor come from?


class Question(enum.StrEnum):
    """The question stored with every answer (``answers.question``)."""

    TRUTH = "truth"
    ORIGIN = "origin"


class Answer(enum.StrEnum):
    """Answer values of the Turing question; the origin question answers an organ or UNSURE."""

    REAL = "real"
    SYNTHETIC = "synthetic"
    UNSURE = "unsure"


class AnswerEventKind(enum.StrEnum):
    """What an ``answer_events`` row records: a case drawn on a screen, or one submission."""

    DISPLAYED = "displayed"  # the case was shown (opens the time on case)
    CREATED = "created"  # first answer stored
    CHANGED = "changed"  # answer replaced (the study allows changes)
    DUPLICATE = "duplicate"  # the same submission again (idempotency key known): nothing new
    REJECTED = "rejected"  # not stored (closed study, too soon, changes not allowed)


class Task(enum.StrEnum):
    """The two analyses of reader answers (``turingct evaluate readers --task``)."""

    TURING = "turing"
    ORIGIN = "origin"


ORGANS: tuple[str, ...] = tuple(o.value for o in Organ)
SIZES: tuple[str, ...] = tuple(s.value for s in SizeClass)
ANSWERS: tuple[str, ...] = tuple(a.value for a in Answer)
ORIGIN_ANSWERS: tuple[str, ...] = (*ORGANS, Answer.UNSURE.value)

# the question each design asks, and the question each analysis reads
DESIGN_QUESTION: dict[StudyDesign, Question] = {
    StudyDesign.TURING: Question.TRUTH,
    StudyDesign.ORGAN_ORIGIN: Question.ORIGIN,
}
QUESTIONS: dict[str, str] = {
    Task.TURING.value: Question.TRUTH.value,
    Task.ORIGIN.value: Question.ORIGIN.value,
}

"""Name -> synthesizer class, imported lazily so that listing methods needs no torch."""

from __future__ import annotations

import importlib
from typing import Any

from core.errors import InputError
from synth_backend.base import Synthesizer

# name -> "module:ClassName"; a method registers itself by adding one line here.
_METHODS: dict[str, str] = {
    "handcrafted": "synth_backend.handcrafted.synthesizer:HandcraftedSynthesizer",
    "pixel2cancer": "synth_backend.pixel2cancer.synthesizer:Pixel2CancerSynthesizer",
    "difftumor": "synth_backend.difftumor.synthesizer:DiffTumorSynthesizer",
    "tumorgen": "synth_backend.tumorgen.synthesizer:TumorGenSynthesizer",
}


# Methods that need trained weights (``--checkpoint``); kept here so that forms can ask for a
# checkpoint without importing torch (tests check it against each class's ``learning_based``).
LEARNING_BASED = frozenset({"difftumor", "tumorgen"})


class UnknownMethodError(InputError, KeyError):
    """A method name that is not registered (a KeyError too, for lookups that expect one)."""

    __str__ = InputError.__str__  # one line as given, not KeyError's quoted repr


def available_methods() -> list[str]:
    return sorted(_METHODS)


def registered_methods() -> tuple[str, ...]:
    """Method names in registration order (modeling-based first), for CLI choices."""
    return tuple(_METHODS)


def get_synthesizer(name: str, **kwargs: Any) -> Synthesizer:
    """Instantiate a registered method, e.g. ``get_synthesizer("pixel2cancer")``."""
    if name not in _METHODS:
        raise UnknownMethodError(
            f"method {name!r}",
            "is not a registered synthesis method",
            f"use one of {', '.join(registered_methods())}",
        )
    module_name, class_name = _METHODS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**kwargs)

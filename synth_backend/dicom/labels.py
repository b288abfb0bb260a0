"""Segment names (SEG segment labels / property types, RTSTRUCT ROI names) -> organ or tumor.

Targets: ``liver``, ``pancreas``, ``kidney`` (organ), ``liver:tumor`` (etc.), ``tumor`` (a
tumor of the one organ segmented beside it) and ``ignore``. Defaults recognise the names TCIA
collections use (HCC-TACE-Seg "Liver" / "Mass", Pancreas-CT "Pancreas", C4KC-KiTS "Kidney" /
"Tumor", SNOMED "Neoplasm"); ``--label-map`` adds or overrides names (a JSON file
``{"name": "target"}`` or ``NAME=TARGET`` pairs). Vessels and ducts named after an organ
("hepatic vein", "portal vein", "pancreatic duct") are not the organ and are ignored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from core.vocabulary import ORGANS
from synth_backend.dicom.errors import DicomError

TARGETS = (*ORGANS, *(f"{o}:tumor" for o in ORGANS), "tumor", "ignore")

_ORGAN_WORDS = {
    "liver": ("liver", "hepatic", "hepato"),
    "pancreas": ("pancrea",),
    "kidney": ("kidney", "renal"),
}
_TUMOR_WORDS = (
    "tumor",
    "tumour",
    "neoplasm",
    "mass",
    "lesion",
    "cancer",
    "carcinoma",
    "hcc",
    "metasta",
    "malignan",
    "gtv",
)
_NOT_ORGAN_WORDS = (
    "vein",
    "artery",
    "arter",
    "vessel",
    "aorta",
    "portal",
    "duct",
    "cava",
    "bile",
    "biliary",
    "gallbladder",
    "pelvis",
    "ureter",
)


def normalize(name: str) -> str:
    """Lower case, '_'/'-' as spaces, single spaces."""
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", str(name))).strip().lower()


def default_target(name: str) -> str | None:
    """The default target of a segment name, or None when the name is not recognised."""
    n = normalize(name)
    tumor = any(w in n for w in _TUMOR_WORDS)
    organs = [o for o, words in _ORGAN_WORDS.items() if any(w in n for w in words)]
    if any(w in n for w in _NOT_ORGAN_WORDS) and not tumor:
        return "ignore"
    if len(organs) > 1:
        return None
    if organs:
        return f"{organs[0]}:tumor" if tumor else organs[0]
    if "cyst" in n:
        return None
    return "tumor" if tumor else None


def parse_label_map(values: Sequence[str] | None) -> dict[str, str]:
    """``--label-map`` values (JSON files or NAME=TARGET pairs) -> {normalized name: target}."""
    out: dict[str, str] = {}
    for value in values or ():
        if "=" in value and not Path(value).is_file():
            pairs: Mapping[str, str] = dict([value.split("=", 1)])
            source = "--label-map"
        else:
            path = Path(value)
            try:
                pairs = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise DicomError(
                    path,
                    '--label-map must be a JSON file {"segment name": "liver:tumor", ...} or '
                    f"NAME=TARGET, got an unreadable file ({exc})",
                    "fix the file",
                ) from exc
            if not isinstance(pairs, dict):
                raise DicomError(
                    path,
                    "--label-map JSON must be an object of name -> target",
                    'write it as {"segment name": "liver:tumor", ...}',
                )
            source = str(path)
        for name, target in pairs.items():
            target = str(target).strip().lower()
            if target not in TARGETS:
                raise DicomError(
                    source,
                    f"target of {name!r} must be one of {TARGETS}, got {target!r}",
                    "fix the label map",
                )
            out[normalize(name)] = target
    return out


K = TypeVar("K")  # segment key: SEG segment number or RTSTRUCT ROI number


def resolve(
    names: Mapping[K, Sequence[str]], label_map: Mapping[str, str], where: str
) -> tuple[dict[K, str], list[str]]:
    """Map segments to targets.

    ``names``: {segment key: candidate names, most specific first (label, then coded
    property type)}. Returns ({segment key: organ or 'organ:tumor'}, notes); a generic
    ``tumor`` goes to the single organ present, and is an error when that is ambiguous.
    """
    mapped: dict[K, str] = {}
    notes: list[str] = []
    for key, candidates in names.items():
        target = next(
            (label_map[normalize(c)] for c in candidates if normalize(c) in label_map), None
        )
        if target is None:
            target = next((t for c in candidates if (t := default_target(c)) is not None), None)
        if target is None:
            notes.append(
                f"{where}: segment {candidates[0]!r} not recognised, skipped (map it "
                f"with --label-map '{candidates[0]}=liver:tumor' or similar)"
            )
            continue
        if target == "ignore":
            continue
        mapped[key] = target
    organs = sorted({t.split(":")[0] for t in mapped.values() if t != "tumor"})
    for key, target in list(mapped.items()):
        if target != "tumor":
            continue
        if len(organs) != 1:
            raise DicomError(
                where,
                f"segment {names[key][0]!r} is a tumor of an unknown organ "
                f"({'organs ' + ', '.join(organs) if organs else 'no organ'} segmented)",
                f"say which with --label-map '{names[key][0]}=liver:tumor' "
                "(or pancreas:tumor, kidney:tumor)",
            )
        mapped[key] = f"{organs[0]}:tumor"
    return mapped, notes

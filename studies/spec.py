"""Study spec: the YAML file a researcher edits to describe a blinded reader study.

Validated by hand (no pydantic): unknown keys and wrong types are rejected with one line,
``<file>: <key> must be <constraint>, got <value>; <fix>``. The result is a frozen
:class:`StudySpec`; :meth:`StudySpec.to_dict` gives the JSON stored in ``Study.spec``.
See ``studies/examples/*.yaml`` for a commented example of each design.
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.vocabulary import DESIGN_QUESTION, ORGANS, Answer, StudyDesign
from studies.errors import SpecError
from studies.matching import MATCH_MODES

DESIGNS: tuple[str, ...] = tuple(d.value for d in StudyDesign)
PLANES = ("axial", "coronal", "sagittal")
# CT window presets (width, level) in HU, from OHIF and the reader-study spec.
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "abdomen": (400.0, 40.0),
    "liver": (150.0, 90.0),
    "lung": (1500.0, -600.0),
    "bone": (2500.0, 480.0),
}
ANY_METHOD = "any"
# Upper bounds of one blinded case, checked before any array is allocated: a box larger than
# a whole abdomen is a typo (e.g. 960 for 96), and the voxel cap bounds memory per case
# (512^3 int16 = 256 MiB; resampling holds a float32 copy).
MAX_CROP_MM = 512.0
MAX_CROP_VOXELS = 512**3
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,199}$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.@\-]{1,100}$")
# Bounds that make every spec parse in bounded time and memory, whatever the file holds. A
# real spec is ~1 kB with no aliases; YAML aliases let 500 bytes stand for 10^9 nodes
# ("billion laughs"), so aliases are counted and the expanded size is checked before any code
# walks the data.
MAX_SPEC_BYTES = 256 * 1024
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 50_000
MAX_DEPTH = 50

_short_repr = reprlib.Repr()
_short_repr.maxstring = _short_repr.maxother = 60
_short_repr.maxlist = _short_repr.maxtuple = _short_repr.maxdict = _short_repr.maxset = 6
_short_repr.maxlevel = 3


def short_repr(value: Any) -> str:
    """A repr of at most ~60 characters that never walks a whole (possibly huge) value."""
    shown = _short_repr.repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


@dataclass(frozen=True)
class Window:
    """A display window: ``width`` and ``level`` in HU; ``name`` is a preset name or 'custom'."""

    name: str
    width: float
    level: float

    @property
    def range(self) -> tuple[float, float]:
        """(low, high) HU shown from black to white."""
        return self.level - self.width / 2.0, self.level + self.width / 2.0


@dataclass(frozen=True)
class Crop:
    """How each case is cut: a fixed box centred on the tumor, or the organ's region.

    ``size`` is (x, y, z) in ``unit`` ('mm' or 'voxels' of the target spacing). With
    ``around='organ'`` and no size, every case gets the largest organ box of the study plus
    ``margin_mm`` (so all cases still share one shape).
    """

    around: str = "tumor"
    size: tuple[float, float, float] | None = (96.0, 96.0, 64.0)
    unit: str = "mm"
    margin_mm: float = 10.0


@dataclass(frozen=True)
class Presentation:
    """What every blinded file looks like: spacing (mm, x y z), crop, default window, planes.

    ``window_in_header`` writes the default window into NIfTI ``cal_min``/``cal_max`` (identical
    for every case), which viewers such as NiiVue and the app's slice viewer use as the initial display range.
    """

    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0)
    crop: Crop = field(default_factory=Crop)
    window: Window = field(default_factory=lambda: Window("abdomen", *WINDOW_PRESETS["abdomen"]))
    window_in_header: bool = True
    planes: tuple[str, ...] = PLANES


@dataclass(frozen=True)
class Reading:
    """How a case is read. ``min_seconds_on_case``: an answer is refused when it arrives sooner
    after the case appeared on the reader's screen (server time; default 1 s: a double click or
    double key press lands 0.06-0.35 s after the next case is drawn). ``idle_seconds``: without
    mouse or key activity for this long the case's on-screen time stops counting."""

    min_seconds_on_case: float = 1.0
    idle_seconds: float = 60.0


@dataclass(frozen=True)
class StudySpec:
    """A validated study spec. Counts are per organ; ``synthetic`` maps method -> count, with
    the key ``'any'`` when the spec gave one number for all methods."""

    name: str
    design: str
    organs: tuple[str, ...]
    real: int
    synthetic: Mapping[str, int]
    tumor_diameter_mm: tuple[float | None, float | None] = (None, None)
    match: str = "none"
    presentation: Presentation = field(default_factory=Presentation)
    readers: tuple[str, ...] = ()
    seed: int = 0
    allow_changes: bool = False
    educational: bool = False
    confidence: bool = False
    reading: Reading = field(default_factory=Reading)
    source: str | None = None

    @property
    def question(self) -> str:
        """Answer question key stored with answers: 'truth' (turing) or 'origin'."""
        return DESIGN_QUESTION[StudyDesign(self.design)].value

    @property
    def choices(self) -> tuple[tuple[str, str], ...]:
        """(button label, stored value) pairs, in display order."""
        unsure = ("Unsure", Answer.UNSURE.value)
        if self.design == StudyDesign.TURING:
            return (("Real", Answer.REAL.value), ("Synthetic", Answer.SYNTHETIC.value), unsure)
        return (*((o.capitalize(), o) for o in self.organs), unsure)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serializable form, re-parseable by :func:`parse_spec`."""
        p = self.presentation
        lo, hi = self.tumor_diameter_mm
        return {
            "name": self.name,
            "design": self.design,
            "organs": list(self.organs),
            "cases_per_organ": {
                "real": self.real,
                "synthetic": (
                    self.synthetic[ANY_METHOD]
                    if set(self.synthetic) == {ANY_METHOD}
                    else dict(self.synthetic)
                ),
            },
            "selection": {"tumor_diameter_mm": [lo, hi], "match": self.match},
            "presentation": {
                "spacing_mm": list(p.spacing_mm),
                "crop": {
                    "around": p.crop.around,
                    "size": list(p.crop.size) if p.crop.size else None,
                    "unit": p.crop.unit,
                    "margin_mm": p.crop.margin_mm,
                },
                "window": {"width": p.window.width, "level": p.window.level}
                if p.window.name == "custom"
                else p.window.name,
                "window_in_header": p.window_in_header,
                "planes": list(p.planes),
            },
            "readers": list(self.readers),
            "seed": self.seed,
            "allow_changes": self.allow_changes,
            "educational": self.educational,
            "confidence": self.confidence,
            "reading": {
                "min_seconds_on_case": self.reading.min_seconds_on_case,
                "idle_seconds": self.reading.idle_seconds,
            },
        }


class _Checker:
    """Validation helpers that build one-line messages naming the file and the key."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, constraint: str, value: Any, fix: str) -> SpecError:
        return SpecError(self.source, f"{key} must be {constraint}, got {short_repr(value)}", fix)

    def mapping(
        self,
        value: Any,
        key: str,
        allowed: set[str],
        required: set[str] | frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, "a mapping", value, "see studies/examples/turing_demo.yaml")
        unknown = sorted(
            (k if len(k) <= 60 else k[:57] + "...") if isinstance(k, str) else short_repr(k)
            for k in value
            if k not in allowed
        )
        if unknown:
            raise SpecError(
                self.source,
                f"unknown key {key + '.' if key != 'spec' else ''}{unknown[0]}",
                f"allowed keys are {', '.join(sorted(allowed))}",
            )
        for req in sorted(required):
            if req not in value:
                raise SpecError(
                    self.source,
                    f"{key + '.' if key != 'spec' else ''}{req} is missing",
                    "add it (see studies/examples/turing_demo.yaml)",
                )
        return dict(value)

    def integer(self, value: Any, key: str, lo: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise self.fail(key, f"an integer >= {lo}", value, "write a whole number")
        return value

    def number(self, value: Any, key: str, positive: bool = True) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or (positive and value <= 0):
            raise self.fail(
                key,
                "a positive number" if positive else "a number",
                value,
                "write a number such as 1.5",
            )
        return float(value)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "true or false", value, "write true or false (no quotes)")
        return value

    def triple(self, value: Any, key: str) -> tuple[float, float, float]:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = [value] * 3
        if not isinstance(value, list | tuple) or len(value) != 3:
            raise self.fail(
                key,
                "a number or a list of 3 numbers (x, y, z)",
                value,
                "write e.g. [1.0, 1.0, 1.0]",
            )
        return tuple(self.number(v, f"{key}[{i}]") for i, v in enumerate(value))  # type: ignore[return-value]

    def choice(self, value: Any, key: str, options: tuple[str, ...]) -> str:
        if value not in options:
            raise self.fail(key, f"one of {', '.join(options)}", value, "pick one of those")
        return value


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a spec YAML file; raises :class:`SpecError` naming the file. Files
    over :data:`MAX_SPEC_BYTES` are refused before they are read."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise SpecError(
            path, f"cannot read the spec ({exc.__class__.__name__})", "check the path"
        ) from exc
    return parse_spec_bytes(raw, source=str(path))


def parse_spec_bytes(raw: bytes, source: str = "<spec>") -> StudySpec:
    """Validate the bytes of an uploaded or read spec file (UTF-8, at most
    :data:`MAX_SPEC_BYTES`)."""
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(
            source,
            f"spec file must be at most {MAX_SPEC_BYTES // 1024} KiB, got more",
            "a study spec is a short YAML file (see studies/examples/)",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(source, "is not a UTF-8 text file", "save it as UTF-8 YAML") from exc
    return parse_spec_text(text, source=source)


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that counts aliases while composing and refuses a document whose
    expanded tree (every alias counted as a copy) is too large, deep or recursive: it is
    checked on the node graph (linear in the file size) before anything is constructed."""

    def __init__(self, stream: str, source: str):
        super().__init__(stream)
        self.source = source
        self.aliases = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise SpecError(
                    self.source,
                    f"spec must use at most {MAX_ALIASES} YAML aliases (*name)",
                    "write the values out",
                )
        return super().compose_node(parent, index)


def _expanded_size(node: yaml.Node, source: str) -> int:
    """Nodes of the tree with every alias expanded, memoized per node (so linear in the
    document); raises :class:`SpecError` past the bounds or on a recursive alias."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(n: yaml.Node, depth: int) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise SpecError(source, "spec has a recursive YAML alias", "write the values out")
        if depth > MAX_DEPTH:
            raise SpecError(
                source,
                f"spec must nest at most {MAX_DEPTH} levels deep",
                "see studies/examples/turing_demo.yaml",
            )
        on_path.add(key)
        total = 1
        if isinstance(n, yaml.SequenceNode):
            children = n.value
        elif isinstance(n, yaml.MappingNode):
            children = [c for pair in n.value for c in pair]
        else:
            children = []
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_EXPANDED_NODES:
                raise SpecError(
                    source,
                    f"spec expands to more than {MAX_EXPANDED_NODES} values (YAML aliases?)",
                    "a study spec is a short file",
                )
        on_path.discard(key)
        sizes[key] = total
        return total

    return size(node, 0)


def safe_load_bounded(text: str, source: str = "<spec>") -> Any:
    """``yaml.safe_load`` in bounded time and memory: at most :data:`MAX_SPEC_BYTES`
    characters, :data:`MAX_ALIASES` aliases and :data:`MAX_EXPANDED_NODES` values once aliases
    are expanded. Raises :class:`SpecError` (one line, naming ``source``, never echoing the
    document)."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError(
            source,
            f"spec must be at most {MAX_SPEC_BYTES // 1024} KiB",
            "a study spec is a short YAML file (see studies/examples/)",
        )
    loader = _BoundedLoader(text, source)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            line = f" at line {where.line + 1}" if where is not None else ""
            raise SpecError(
                source,
                f"is not valid YAML{line}",
                "fix the syntax (indentation, colons, quotes)",
            ) from None
        if node is None:
            return None
        _expanded_size(node, source)
        try:
            return loader.construct_document(node)
        except yaml.YAMLError:
            raise SpecError(
                source,
                "holds a YAML value that is not plain data",
                "use plain strings, numbers, lists and mappings",
            ) from None
    finally:
        loader.dispose()


def parse_spec_text(text: str, source: str = "<spec>") -> StudySpec:
    """Validate YAML text (see :func:`parse_spec`), parsed by :func:`safe_load_bounded`."""
    return parse_spec(safe_load_bounded(text, source), source=source)


def parse_spec(data: Any, source: str = "<spec>") -> StudySpec:
    """Validate a spec mapping (as loaded from YAML) into a frozen :class:`StudySpec`."""
    c = _Checker(source)
    top = c.mapping(
        data,
        "spec",
        {
            "name",
            "design",
            "organs",
            "cases_per_organ",
            "selection",
            "presentation",
            "readers",
            "seed",
            "allow_changes",
            "educational",
            "confidence",
            "reading",
        },
        {"name", "design", "organs", "cases_per_organ"},
    )
    name = top["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise c.fail(
            "name",
            "1-200 letters, digits, spaces, '_', '.' or '-'",
            name,
            "choose a plain study name",
        )
    design = c.choice(top["design"], "design", DESIGNS)
    organs = top["organs"]
    if isinstance(organs, str):
        organs = [organs]
    if not isinstance(organs, list) or not organs:
        raise c.fail("organs", "a non-empty list", organs, f"list some of {', '.join(ORGANS)}")
    organs = tuple(c.choice(o, f"organs[{i}]", ORGANS) for i, o in enumerate(organs))
    if len(set(organs)) != len(organs):
        raise c.fail("organs", "a list without repeats", list(organs), "remove the duplicate")
    if design == StudyDesign.ORGAN_ORIGIN and len(organs) < 2:
        raise c.fail(
            "organs",
            "at least 2 organs for design organ_origin",
            list(organs),
            "add organs or use design: turing",
        )

    cases = c.mapping(
        top["cases_per_organ"], "cases_per_organ", {"real", "synthetic"}, {"real", "synthetic"}
    )
    real = c.integer(cases["real"], "cases_per_organ.real")
    syn_raw = cases["synthetic"]
    if isinstance(syn_raw, Mapping):
        if not syn_raw:
            raise c.fail(
                "cases_per_organ.synthetic",
                "a count or a non-empty method: count mapping",
                syn_raw,
                "write e.g. {pixel2cancer: 10}",
            )
        synthetic = {
            str(m): c.integer(n, f"cases_per_organ.synthetic.{m}") for m, n in syn_raw.items()
        }
    else:
        synthetic = {ANY_METHOD: c.integer(syn_raw, "cases_per_organ.synthetic")}
    n_syn = sum(synthetic.values())
    if design == StudyDesign.TURING and (real < 1 or n_syn < 1):
        raise c.fail(
            "cases_per_organ",
            "at least 1 real and 1 synthetic case for design turing",
            {"real": real, "synthetic": n_syn},
            "raise the counts",
        )
    if real + n_syn < 1:
        raise c.fail(
            "cases_per_organ",
            "at least 1 case",
            {"real": real, "synthetic": n_syn},
            "raise the counts",
        )

    diameter: tuple[float | None, float | None] = (None, None)
    # Size matching is on by default for Turing tests: size alone must not give the arm away.
    match = "size" if design == StudyDesign.TURING else "none"
    if "selection" in top:
        sel = c.mapping(top["selection"], "selection", {"tumor_diameter_mm", "match"})
        if "match" in sel:
            match = c.choice(
                "none" if sel["match"] is None else sel["match"], "selection.match", MATCH_MODES
            )
        if "tumor_diameter_mm" in sel:
            rng = sel["tumor_diameter_mm"]
            if not isinstance(rng, list | tuple) or len(rng) != 2:
                raise c.fail(
                    "selection.tumor_diameter_mm",
                    "[min, max] in mm (null for open)",
                    rng,
                    "write e.g. [5, 20]",
                )
            lo = (
                None
                if rng[0] is None
                else c.number(rng[0], "selection.tumor_diameter_mm[0]", positive=False)
            )
            hi = None if rng[1] is None else c.number(rng[1], "selection.tumor_diameter_mm[1]")
            if lo is not None and hi is not None and lo > hi:
                raise c.fail(
                    "selection.tumor_diameter_mm",
                    "[min, max] with min <= max",
                    rng,
                    "swap the numbers",
                )
            diameter = (lo, hi)

    presentation = _presentation(c, top.get("presentation", {}))
    readers = top.get("readers", [])
    if not isinstance(readers, list):
        raise c.fail("readers", "a list of usernames", readers, "write e.g. [alice, bob]")
    for i, r in enumerate(readers):
        if not isinstance(r, str) or not _USER_RE.match(r):
            raise c.fail(
                f"readers[{i}]", "a username (letters, digits, _ . @ -)", r, "fix the username"
            )
    if len(set(readers)) != len(readers):
        raise c.fail("readers", "a list without repeats", readers, "remove the duplicate")
    return StudySpec(
        name=name,
        design=design,
        organs=organs,
        real=real,
        synthetic=synthetic,
        tumor_diameter_mm=diameter,
        match=match,
        presentation=presentation,
        readers=tuple(readers),
        seed=c.integer(top.get("seed", 0), "seed"),
        allow_changes=c.boolean(top.get("allow_changes", False), "allow_changes"),
        educational=c.boolean(top.get("educational", False), "educational"),
        confidence=c.boolean(top.get("confidence", False), "confidence"),
        reading=_reading(c, top.get("reading", {})),
        source=source,
    )


def check_crop_bounds(
    size: tuple[float, float, float] | None,
    unit: str,
    spacing: tuple[float, float, float],
    source: str = "<spec>",
) -> None:
    """Refuse a crop box over :data:`MAX_CROP_MM` per axis or :data:`MAX_CROP_VOXELS` voxels
    at ``spacing`` (mm); ``size`` is in ``unit`` ('mm' or 'voxels'), None = not fixed yet."""
    if size is None:
        return
    sp = [float(v) for v in spacing]
    mm = [float(v) * (s if unit == "voxels" else 1.0) for v, s in zip(size, sp, strict=True)]
    vox = [max(1, round(m / s)) for m, s in zip(mm, sp, strict=True)]
    if max(mm) > MAX_CROP_MM:
        raise SpecError(
            source,
            f"presentation.crop.size must be at most {MAX_CROP_MM:g} mm per axis, got "
            f"{[round(m, 1) for m in mm]} mm",
            "crop around the tumor (e.g. [96, 96, 64] mm)",
        )
    if math.prod(vox) > MAX_CROP_VOXELS:
        raise SpecError(
            source,
            f"the crop must be at most {MAX_CROP_VOXELS} voxels, got "
            f"{' x '.join(map(str, vox))} at spacing {sp} mm",
            "use a coarser presentation.spacing_mm or a smaller crop",
        )


def _reading(c: _Checker, raw: Any) -> Reading:
    r = c.mapping(
        raw if raw is not None else {}, "reading", {"min_seconds_on_case", "idle_seconds"}
    )
    default = Reading()
    least = c.number(
        r.get("min_seconds_on_case", default.min_seconds_on_case),
        "reading.min_seconds_on_case",
        positive=False,
    )
    if not 0 <= least <= 60:
        raise c.fail(
            "reading.min_seconds_on_case",
            "0-60 seconds",
            least,
            "write e.g. 1 (0 turns the check off)",
        )
    idle = c.number(r.get("idle_seconds", default.idle_seconds), "reading.idle_seconds")
    if not 5 <= idle <= 3600:
        raise c.fail("reading.idle_seconds", "5-3600 seconds", idle, "write e.g. 60")
    return Reading(min_seconds_on_case=least, idle_seconds=idle)


def _presentation(c: _Checker, raw: Any) -> Presentation:
    p = c.mapping(
        raw if raw is not None else {},
        "presentation",
        {"spacing_mm", "crop", "window", "window_in_header", "planes"},
    )
    default = Presentation()
    spacing = (
        c.triple(p["spacing_mm"], "presentation.spacing_mm")
        if "spacing_mm" in p
        else default.spacing_mm
    )
    crop = default.crop
    if "crop" in p:
        cr = c.mapping(p["crop"], "presentation.crop", {"around", "size", "unit", "margin_mm"})
        around = c.choice(cr.get("around", "tumor"), "presentation.crop.around", ("tumor", "organ"))
        unit = c.choice(cr.get("unit", "mm"), "presentation.crop.unit", ("mm", "voxels"))
        size = cr.get("size", crop.size if around == "tumor" else None)
        size = None if size is None else c.triple(size, "presentation.crop.size")
        if around == "tumor" and size is None:
            raise c.fail(
                "presentation.crop.size",
                "given when crop.around is tumor",
                None,
                "write e.g. size: [96, 96, 64]",
            )
        margin = c.number(cr.get("margin_mm", 10.0), "presentation.crop.margin_mm", positive=False)
        crop = Crop(around=around, size=size, unit=unit, margin_mm=margin)
    check_crop_bounds(crop.size, crop.unit, spacing, c.source)
    window = default.window
    if "window" in p:
        w = p["window"]
        if isinstance(w, str):
            name = c.choice(w, "presentation.window", tuple(WINDOW_PRESETS))
            window = Window(name, *WINDOW_PRESETS[name])
        else:
            wm = c.mapping(w, "presentation.window", {"width", "level"}, {"width", "level"})
            window = Window(
                "custom",
                c.number(wm["width"], "presentation.window.width"),
                c.number(wm["level"], "presentation.window.level", positive=False),
            )
    planes = p.get("planes", list(default.planes))
    if isinstance(planes, str):
        planes = [planes]
    if not isinstance(planes, list) or not planes:
        raise c.fail(
            "presentation.planes", "a non-empty list", planes, f"list some of {', '.join(PLANES)}"
        )
    planes = tuple(c.choice(x, f"presentation.planes[{i}]", PLANES) for i, x in enumerate(planes))
    return Presentation(
        spacing_mm=spacing,
        crop=crop,
        window=window,
        window_in_header=c.boolean(
            p.get("window_in_header", True), "presentation.window_in_header"
        ),
        planes=planes,
    )

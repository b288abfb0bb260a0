"""`turingct phantom`: write the built-in abdominal CT phantom cohort."""

from __future__ import annotations

import argparse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {value}")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def register(sub) -> None:
    p = sub.add_parser(
        "phantom",
        help="generate the built-in phantom CT cohort (AbdomenAtlas-style layout)",
        description="Generate abdominal CT phantoms (portal-venous phase) with organ masks and, "
        "optionally, reference phantom lesions. Resumable: re-run the same command "
        "to finish an interrupted cohort.",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--n", type=_positive, default=4, help="number of cases (default 4)")
    p.add_argument("--seed", type=int, default=0, help="cohort seed (default 0)")
    p.add_argument(
        "--lesion-fraction",
        type=_fraction,
        default=0.5,
        metavar="F",
        help="fraction of cases with one phantom lesion in liver, pancreas or kidney (default 0.5)",
    )
    p.add_argument(
        "--preset",
        choices=("default", "small"),
        default="default",
        help="default: 256x224x96 at 1.5x1.5x2.5 mm; small: 128x112x48 at 3x3x5 mm",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from synth_backend.phantom import PhantomConfig, generate_cohort, load_cohort

    out = generate_cohort(
        args.out,
        n=args.n,
        seed=args.seed,
        config=PhantomConfig.preset(args.preset),
        lesion_fraction=args.lesion_fraction,
        progress=not args.no_progress,
    )
    doc = load_cohort(out) or {}
    cases = doc.get("cases", [])
    lesions = sum(len(c.get("lesions", [])) for c in cases)
    print(
        f"phantom cohort: {out.resolve()} ({len(cases)} cases, {lesions} with a phantom "
        f"lesion; details in {out.resolve() / 'cohort.json'})"
    )
    print(f"next: turingct data import --format atlas {out}")
    return 0

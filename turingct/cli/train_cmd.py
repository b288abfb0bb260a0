"""`turingct train autoencoder|difftumor|tumorgen`: train the learning-based methods.

Examples::

    turingct train autoencoder --data data/phantom --organ liver --out ckpt/ae --preset tiny
    turingct train difftumor --organ liver --autoencoder ckpt/ae/final.pt --data data/phantom \\
        --out ckpt/difftumor_liver_early --set stage=early
    turingct train tumorgen --organ liver --autoencoder ckpt/ae --from-catalog --out ckpt/tg

Re-running the same command resumes from ``OUT/last.pt``.
"""

from __future__ import annotations

import argparse
import sys

from core.vocabulary import ORGANS
from synth_backend.training.config import PRESETS
from turingct.cli import add_db_option, group


def _common(parser: argparse.ArgumentParser, *, needs_autoencoder: bool) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument(
        "--data",
        metavar="DIR_OR_MANIFEST",
        help="folder of <case>/ct.nii.gz + <case>/segmentations/<organ>.nii.gz "
        "(+ <organ>_tumor.nii.gz), or a manifest file of "
        "ct,organ_mask[,tumor_mask] lines",
    )
    src.add_argument(
        "--from-catalog",
        action="store_true",
        help="train on the non-synthetic volumes of the catalog database",
    )
    add_db_option(parser)
    parser.add_argument(
        "--organ",
        default="liver",
        choices=ORGANS,
        help="organ whose masks centre the patches (default: liver)",
    )
    if needs_autoencoder:
        parser.add_argument(
            "--autoencoder",
            required=True,
            metavar="CKPT",
            help="autoencoder checkpoint (final.pt or its training folder)",
        )
    parser.add_argument(
        "--out",
        required=True,
        metavar="CKPT_DIR",
        help="output folder (last.pt, final.pt, loss.csv); resumes if present",
    )
    parser.add_argument(
        "--preset",
        default="tiny",
        choices=PRESETS,
        help="tiny: minutes on a CPU (tests); small: the shipped demo weights "
        "(~1 h on 2 CPU cores); full: the reference recipe for a GPU",
    )
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML overriding the preset")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one key, e.g. train.steps=500 (repeatable)",
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def register(subparsers) -> None:
    sub = group(subparsers, "train", "train the learning-based synthesis models")
    for method, needs_ae, text in (
        ("autoencoder", False, "3D AutoencoderKL on 1 mm patches (shared by both methods)"),
        ("difftumor", True, "DiffTumor latent diffusion (stage early: T=4 DDPM; late: DDIM)"),
        ("tumorgen", True, "TumorGen rectified flow with mask refiner"),
    ):
        parser = sub.add_parser(method, help=text, description=text)
        _common(parser, needs_autoencoder=needs_ae)
        parser.set_defaults(func=_run, method=method)


def _run(args: argparse.Namespace) -> int:
    from catalog.training import cases_from_catalog
    from core.errors import InputError
    from synth_backend.base import resolve_device
    from synth_backend.training.config import build_config
    from synth_backend.training.data import find_cases
    from synth_backend.training.loop import TrainingInterrupted

    try:
        device = resolve_device(args.device)
    except (RuntimeError, ValueError) as exc:
        # resolve_device's message carries the fix when it has one ("...; use --device cpu")
        problem, sep, fix = str(exc).rpartition("; ")
        if isinstance(exc, InputError):
            problem, sep, fix = exc.problem, "; ", exc.fix
        if not sep:
            problem, fix = fix, "pass --device auto, cpu or cuda[:N]"
        raise InputError("--device", problem, fix) from exc
    cfg = build_config(args.method, args.preset, args.config, args.overrides)
    cases = (
        cases_from_catalog(args.db, args.organ)
        if args.from_catalog
        else find_cases(args.data, args.organ)
    )
    print(
        f"training {args.method} ({args.preset}) on {len(cases)} case(s), device {device}, "
        f"{cfg['train']['steps']} steps -> {args.out}"
    )
    progress = not args.no_progress
    try:
        final = _train(args, cases, cfg, device, progress)
    except TrainingInterrupted as exc:
        print(exc, file=sys.stderr)
        return 130
    print(f"wrote {final}")
    return 0


def _train(args: argparse.Namespace, cases, cfg, device: str, progress: bool):
    if args.method == "autoencoder":
        from synth_backend.autoencoder.train import train_autoencoder

        final = train_autoencoder(cases, cfg, args.out, device=device, progress=progress)
    elif args.method == "difftumor":
        from synth_backend.difftumor.train import train_difftumor

        final = train_difftumor(
            cases, cfg, args.autoencoder, args.out, device=device, progress=progress
        )
    else:
        from synth_backend.tumorgen.train import train_tumorgen

        final = train_tumorgen(
            cases, cfg, args.autoencoder, args.out, device=device, progress=progress
        )
    return final

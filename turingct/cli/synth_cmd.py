"""`turingct synth`: insert synthetic tumors into one CT, a batch of CTs, or preview a result.

    turingct synth --method M --organ O --ct CT --organ-mask MASK --out DIR --seed 7 [...]
        [--size S | --diameter-mm D] [--n-tumors K] [--profile train|vtt] [--vessel-mask FILE]
    turingct synth batch --method M --organ O (--from-catalog | --from-dir DIR) --n N --out DIR
    turingct synth preview DIR --out preview.png
    turingct synth replay DIR --out DIR2 [--device D]

`synth` is a command and a group at once: its own options run one synthesis; `batch`,
`preview` and `replay` are optional subcommands (argparse picks them when they come first).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.vocabulary import ORGANS, SIZES
from synth_backend.registry import registered_methods
from turingct.cli import add_db_option

METHODS = registered_methods()


def _add_method_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument("--method", choices=METHODS, required=required, help="synthesis method")
    p.add_argument("--organ", choices=ORGANS, required=required, help="organ to put tumors in")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", choices=SIZES, help="tumor size class")
    size.add_argument("--diameter-mm", type=float, help="target tumor diameter in mm")
    p.add_argument(
        "--n-tumors",
        type=int,
        default=None,
        metavar="K",
        help="number of tumors (default: one with --size/--diameter-mm for "
        "pixel2cancer and the learned methods, else each method's own count)",
    )
    p.add_argument(
        "--profile",
        choices=("train", "vtt"),
        default=None,
        help="handcrafted only: train (fast, default) or vtt (the paper's visual "
        "Turing test version: vessel avoidance, capsule, mass effect)",
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="weights of learning-based methods (default: the shipped small liver "
        "weights, synth_backend/weights/)",
    )


def register(sub) -> None:
    parser = sub.add_parser(
        "synth",
        help="insert synthetic tumors into CT volumes",
        description="Insert synthetic tumors into one CT. Subcommands: "
        "`synth batch ...`, `synth preview ...`, `synth replay ...`.",
    )
    _add_method_options(parser, required=False)
    parser.add_argument("--ct", help="input CT (NIfTI/NRRD)")
    parser.add_argument("--organ-mask", help="organ mask on the CT's grid")
    parser.add_argument(
        "--organ-label",
        type=int,
        default=None,
        help="organ label in a multi-label mask (binary masks need none)",
    )
    parser.add_argument(
        "--out", help="output folder (ct.nii.gz, tumor_mask.nii.gz, provenance.json)"
    )
    parser.add_argument(
        "--vessel-mask",
        default=None,
        help="handcrafted --profile vtt: the dataset's vessel mask on the CT's "
        "grid (default: large vessels derived from HU)",
    )
    parser.set_defaults(func=_synth, _parser=parser)
    subs = parser.add_subparsers(dest="synth_command", metavar="SUBCOMMAND")

    batch = subs.add_parser(
        "batch",
        help="synthesize over many healthy volumes (resumable)",
        description="Synthesize over healthy volumes from the catalog or "
        "a folder; re-running skips finished outputs.",
    )
    _add_method_options(batch, required=True)
    src = batch.add_mutually_exclusive_group(required=True)
    src.add_argument("--from-catalog", action="store_true", help="healthy volumes in the db")
    src.add_argument(
        "--from-dir", help="folder of <case>/ct.nii.gz + <case>/segmentations/<organ>.nii.gz"
    )
    batch.add_argument("--dataset", default=None, help="only this catalog dataset")
    batch.add_argument("--n", type=int, default=None, help="number of outputs (default: all)")
    batch.add_argument("--out", required=True, help="output folder")
    batch.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local (this process, default) or ray (a Ray cluster)",
    )
    batch.add_argument(
        "--address",
        default=None,
        help="ray: cluster address (default: $RAY_ADDRESS or a local instance)",
    )
    batch.add_argument(
        "--gpus-per-task",
        type=float,
        default=0.0,
        help="ray: GPUs requested per volume (default 0)",
    )
    batch.add_argument(
        "--max-retries",
        type=int,
        default=3,
        help="ray: retries of a task whose worker died (default 3)",
    )
    batch.add_argument(
        "--no-register", action="store_true", help="do not register outputs in the database"
    )
    add_db_option(batch)
    batch.set_defaults(func=_batch)

    preview = subs.add_parser(
        "preview", help="PNG of axial/coronal/sagittal slices through the tumor centre"
    )
    preview.add_argument("dir", help="a synthesis output folder")
    preview.add_argument("--out", required=True, help="PNG file to write")
    preview.set_defaults(func=_preview)

    replay = subs.add_parser(
        "replay",
        help="re-run a finished synthesis from its provenance.json and compare the volumes",
        description="Re-apply the parameters recorded in DIR/provenance.json to the same "
        "inputs and checkpoint (both checked by sha256), write the result to --out and "
        "compare it voxel by voxel with DIR (exit 1 when they differ).",
    )
    replay.add_argument("dir", help="a synthesis output folder (or its provenance.json)")
    replay.add_argument("--out", required=True, help="folder for the replayed output")
    replay.add_argument(
        "--device",
        default=None,
        help="auto, cpu or cuda[:N] (default: the recorded device; the same volume bit for "
        "bit is promised on the same device only)",
    )
    replay.set_defaults(func=_replay)


def _options(args) -> dict:
    from core.errors import InputError

    if args.n_tumors is not None and args.n_tumors < 1:
        raise InputError(
            "--n-tumors",
            f"must be >= 1, got {args.n_tumors}",
            "pass a positive count or leave it out",
        )
    if args.profile is not None and args.method != "handcrafted":
        raise InputError(
            "--profile",
            f"is a handcrafted option, got --method {args.method}",
            "drop --profile or use --method handcrafted",
        )
    return {
        "size": args.size,
        "diameter_mm": args.diameter_mm,
        "n_tumors": args.n_tumors,
        "profile": args.profile,
    }


def lesion_report(stats: dict, limit: int = 10) -> str:
    """One line per synthesis: every lesion's own diameter and centre, never their union's."""
    lesions = stats.get("lesions") or []
    shown = ", ".join(
        f"{les['equivalent_diameter_mm']:.1f} mm ({les['voxels']} voxels) at "
        f"{tuple(round(c) for c in les['centre_voxel'])}"
        for les in lesions[:limit]
    )
    more = f", ... {len(lesions) - limit} more" if len(lesions) > limit else ""
    contrast = stats.get("hu_contrast")
    return (
        f"{stats['count']} lesion(s): {shown or 'none'}{more}; contrast "
        f"{'n/a' if contrast is None else f'{contrast:+.0f} HU'}"
    )


def _synth(args) -> int:
    missing = [
        f"--{n.replace('_', '-')}"
        for n in ("method", "organ", "ct", "organ_mask", "out")
        if getattr(args, n) is None
    ]
    if missing:
        args._parser.print_usage()
        print(
            f"turingct synth: error: missing {', '.join(missing)} "
            "(or use `turingct synth batch|preview ...`)"
        )
        return 2
    from core.errors import InputError
    from synth_backend.provenance import read_provenance
    from synth_backend.runner import synthesize_file

    if args.vessel_mask is not None and args.method != "handcrafted":
        raise InputError(
            "--vessel-mask",
            f"is a handcrafted option, got --method {args.method}",
            "drop it or use --method handcrafted --profile vtt",
        )
    out = synthesize_file(
        args.method,
        args.ct,
        args.organ_mask,
        organ=args.organ,
        organ_label=args.organ_label,
        out_dir=args.out,
        seed=args.seed,
        device=args.device,
        checkpoint=args.checkpoint,
        vessel_mask=args.vessel_mask,
        **_options(args),
    )
    print(f"{out}: {lesion_report(read_provenance(out)['tumor'])}")
    return 0


def _batch(args) -> int:
    from catalog.batch import items_from_catalog, run_batch
    from synth_backend.batch import BatchConfig, items_from_dir

    if args.from_dir:
        items = items_from_dir(args.from_dir, args.organ)
    else:
        items = items_from_catalog(args.organ, dataset=args.dataset, db_url=args.db)
    config = BatchConfig(
        method=args.method,
        organ=args.organ,
        out_dir=args.out,
        seed=args.seed,
        n=args.n,
        device=args.device,
        checkpoint=args.checkpoint,
        options=_options(args),
        register=not args.no_register and bool(args.from_catalog),
        db_url=args.db,
    )
    if args.executor == "ray":
        from catalog.batch import run_batch_on
        from synth_backend.ray_executor import RayExecutor

        executor = RayExecutor(
            address=args.address, gpus_per_task=args.gpus_per_task, max_retries=args.max_retries
        )
        summary = run_batch_on(executor, items, config)
    else:
        summary = run_batch(items, config)
    print(
        f"{summary.done} done ({summary.skipped} already there), {summary.failed} failed; "
        f"outputs in {args.out}"
        + (f"; failures listed in {summary.failures_path}" if summary.failed else "")
    )
    return 1 if summary.failed and not summary.done else 0


def _preview(args) -> int:
    from synth_backend.preview import write_preview

    print(write_preview(args.dir, args.out))
    return 0


def _replay(args) -> int:
    from synth_backend.runner import compare_outputs, replay_file

    source = Path(args.dir)
    source = source.parent if source.name == "provenance.json" else source
    out = replay_file(source, args.out, device=args.device)
    report = compare_outputs(source, out)
    if report["identical"]:
        print(f"{out}: replay of {source}: ct and tumor mask identical")
        return 0
    ct, mask = report["ct.nii.gz"], report["tumor_mask.nii.gz"]
    print(
        f"{out}: replay of {source} differs: ct {ct['differing_voxels']} voxel(s) (max "
        f"{ct['max_abs']:.0f} HU), tumor mask {mask['differing_voxels']} voxel(s); bit-exact "
        "replay needs the recorded device and library versions (see provenance environment)"
    )
    return 1

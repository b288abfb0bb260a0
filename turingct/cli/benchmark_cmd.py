"""`turingct benchmark seg`: the Table-2-style segmentation benchmark (real vs synthetic tumors).

The work is done by ``evaluation.segbench``; this module only parses and prints.
"""

from __future__ import annotations

from pathlib import Path

from core.vocabulary import ORGANS
from synth_backend.registry import registered_methods
from turingct.cli import add_db_option, group

# as evaluation.segbench.config.TRAIN_ON (not imported: that package loads torch)
TRAIN_ON = ("real", *registered_methods())


def register(sub) -> None:
    bench = group(sub, "benchmark", "benchmarks that train and test models")
    p = bench.add_parser(
        "seg",
        help="train a UNet on real or on-the-fly synthetic tumors, test on real ones",
        description="Segmentation benchmark (Table 2 of the book chapter): a MONAI UNet trained "
        "on real tumors or on healthy CT with a new synthetic tumor each time a "
        "volume is drawn, tested (DSC, NSD, patient-level detection) on held-out "
        "real tumors (phantom lesions on the phantom cohort). Resumable: re-run the "
        "same command to continue from the checkpoint in --out.",
    )
    p.add_argument("--train-on", required=True, choices=TRAIN_ON)
    p.add_argument("--organ", required=True, choices=ORGANS)
    p.add_argument(
        "--preset",
        choices=("tiny", "full"),
        default="tiny",
        help="tiny: CPU minutes, 2 mm, 48^3 patches; full: the GPU recipe",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", default=None, help="catalog dataset name (default: all)")
    src.add_argument(
        "--data",
        type=Path,
        default=None,
        help="AbdomenAtlas-layout folder (e.g. a phantom cohort), no database",
    )
    p.add_argument("--iterations", type=int, default=None, help="override the preset's count")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default benchmarks/seg/<train_on>_<organ>_<preset>)",
    )
    p.add_argument("--store", action="store_true", help="record the row in the database")
    add_db_option(p)
    p.set_defaults(func=cmd_seg)


def cmd_seg(args) -> int:
    from evaluation.segbench import catalog_cases, folder_cases, preset, run_benchmark
    from evaluation.segbench.run import store_benchmark

    overrides = {"iterations": args.iterations} if args.iterations else {}
    config = preset(args.preset, **overrides)
    out = args.out or Path("benchmarks") / "seg" / f"{args.train_on}_{args.organ}_{args.preset}"
    engine = None
    if args.data is not None:
        cases = folder_cases(args.data, args.organ, config, progress=True)
        source = str(args.data)
    else:
        from db.session import open_engine, session_scope

        engine = open_engine(args.db)
        with session_scope(engine) as session:
            cases = catalog_cases(session, args.organ, config, dataset=args.dataset, progress=True)
        source = f"catalog dataset {args.dataset or '(all)'}"
    result = run_benchmark(
        cases,
        train_on=args.train_on,
        organ=args.organ,
        config=config,
        seed=args.seed,
        out_dir=out,
        device=args.device,
        source=source,
    )
    if args.store:
        from db.session import open_engine, session_scope

        engine = engine or open_engine(args.db)
        with session_scope(engine) as session:
            stored = store_benchmark(session, result)
            print(f"stored as evaluation result {stored.id}")
    r = result.row
    print(
        f"{r['train_on']} -> {r['organ']} ({r['test_tumor_kind']}): DSC {r['dsc_mean']:.3f} "
        f"[{r['dsc_low']:.3f}, {r['dsc_high']:.3f}], NSD@{r['tolerance_mm']:g}mm "
        f"{r['nsd_mean']:.3f}, sensitivity {r['sensitivity']:.2f}, specificity "
        f"{r['specificity']:.2f} ({r['n_test_tumor']} tumor + {r['n_test_healthy']} healthy "
        f"test volumes, {r['seconds']:.0f} s on {r['device']})"
    )
    print(f"wrote {out}/benchmark.csv, per_case.csv, loss.csv, model.pt, manifest.json")
    return 0

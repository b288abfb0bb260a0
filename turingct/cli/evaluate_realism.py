"""`turingct evaluate realism`: the machine Turing test (see :mod:`evaluation.realism`).

Registered by ``evaluate_cmd.register``; kept in its own module so the command's options and
output handling stay in one place.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from core.vocabulary import ORGANS
from turingct.cli import add_db_option

KIND = "realism"
# literals (not imported) so that building the CLI parser loads no numpy/pandas; a test checks
# they equal evaluation.realism's defaults
DISCRIMINATORS = ("radiomics-logreg", "radiomics-svm", "cnn")
EPOCHS, N_BOOTSTRAP, N_PERMUTATIONS, MIN_LESION_ML = 40, 2000, 200, 0.1


def register(ev) -> None:
    p = ev.add_parser(
        "realism",
        help="machine Turing test: can a classifier tell real from synthetic tumors?",
        description="Blinded tumor-centred crops (as study cases) of real and synthetic tumors; "
        "radiomics (tumor + 5 mm rim) logistic regression / SVM and a small MONAI "
        "3D CNN, cross-validated with cases grouped by source volume. Per method: "
        "AUC with a bootstrap 95% CI (chance 0.5, lower = more realistic), FRD, "
        "and the features that give the method away.",
    )
    p.add_argument(
        "--real",
        required=True,
        metavar="DATASET_OR_DIR",
        help="real tumors: cases CSV (ct,mask,organ), MSD / AbdomenAtlas folder or "
        "catalog dataset name",
    )
    p.add_argument(
        "--synthetic",
        required=True,
        nargs="+",
        metavar="DIR_OR_METHOD",
        help="synthesis output folder(s) ([LABEL=]DIR) and/or catalog method names",
    )
    p.add_argument("--organ", required=True, choices=ORGANS)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("realism.csv"),
        help="AUC table (also writes <out>.features.csv, .scores.csv, .cases.csv "
        "and <out>.html with the AUC forest plot)",
    )
    p.add_argument(
        "--discriminators", nargs="+", choices=DISCRIMINATORS, default=list(DISCRIMINATORS)
    )
    p.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="study spec YAML whose presentation (spacing, crop) the cases copy "
        "(default: the --for-study study's, else 1 mm, 96x96x64 mm)",
    )
    p.add_argument("--cnn-epochs", type=int, default=EPOCHS)
    p.add_argument("--device", default="auto", help="CNN device: auto | cpu | cuda[:N]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=N_BOOTSTRAP)
    p.add_argument(
        "--n-permutations",
        type=int,
        default=N_PERMUTATIONS,
        help="label permutations for the radiomics p-values (0: none)",
    )
    p.add_argument(
        "--min-lesion-ml",
        type=float,
        default=MIN_LESION_ML,
        help="smaller connected components are not cases",
    )
    p.add_argument(
        "--store",
        action="store_true",
        help="also record the result in the database (dashboard, report)",
    )
    p.add_argument(
        "--for-study",
        default=None,
        help="with --store: attach the result to this study (name or id)",
    )
    add_db_option(p)
    p.set_defaults(func=cmd_realism)


def _sibling(out: Path, what: str) -> Path:
    return out.with_name(f"{out.stem}.{what}.csv")


def _presentation(args):
    """The crops' presentation: --spec's, else the --for-study study's, else the default."""
    from studies.spec import Presentation, load_spec, parse_spec

    if args.spec is not None:
        return load_spec(args.spec).presentation
    if args.for_study is not None:
        from db.models import Study
        from db.session import open_engine, session_scope
        from evaluation.store import resolve_study_id

        with session_scope(open_engine(args.db)) as session:
            study = session.get_one(Study, resolve_study_id(session, args.for_study))
            return parse_spec(study.spec, f"study {study.name}").presentation
    return Presentation()


def result_name(organ: str, methods) -> str:
    return f"machine Turing test {organ}: {', '.join(methods)}"[:200]


def cmd_realism(args: argparse.Namespace) -> int:
    from evaluation import realism
    from evaluation.radiomics import extractor_settings
    from evaluation.realism_cnn import CnnOptions
    from evaluation.realism_sources import real_sources, synthetic_sources
    from evaluation.tables import EvaluationInputError, write_table

    for name, value in (("--n-boot", args.n_boot), ("--cnn-epochs", args.cnn_epochs)):
        if value < 1:
            raise EvaluationInputError(
                name, f"{name} must be >= 1, got {value}", f"pass a positive {name}"
            )
    presentation = _presentation(args)
    sources, described = real_sources(args.real, args.organ, args.db)
    descriptions = [f"real: {described}"]
    for arg in args.synthetic:
        syn, described = synthetic_sources(arg, args.organ, args.db)
        sources += syn
        descriptions.append(f"synthetic: {described}")
    print(f"{len(sources)} tumor files; cropping lesions ...", flush=True)
    cases = realism.make_cases(sources, presentation, min_lesion_ml=args.min_lesion_ml)
    methods = sorted({c.method for c in cases if c.arm == "synthetic"})
    realism.check_arms(cases, args.organ, methods)  # before the slow feature extraction
    print(
        f"{len(cases)} cases ({sum(c.arm == 'real' for c in cases)} real); radiomics ...",
        flush=True,
    )
    spec = extractor_settings()
    features = realism.case_features(cases, presentation.spacing_mm, spec)
    cnn = (
        CnnOptions(epochs=args.cnn_epochs, device=args.device)
        if "cnn" in args.discriminators
        else None
    )
    result = realism.run_realism(
        cases,
        features,
        organ=args.organ,
        spacing=presentation.spacing_mm,
        seed=args.seed,
        discriminators=args.discriminators,
        n_boot=args.n_boot,
        n_perm=args.n_permutations,
        cnn_options=cnn,
        log=lambda m: print(m, flush=True),
    )
    conv = realism.conventions(
        spec,
        presentation,
        seed=args.seed,
        n_boot=args.n_boot,
        n_perm=args.n_permutations,
        cnn=cnn,
        min_lesion_ml=args.min_lesion_ml,
        sources="; ".join(descriptions),
    )
    write_table(result.table, args.out, conv, "machine Turing test (realism)")
    write_table(
        result.features, _sibling(args.out, "features"), conv, "features that give a method away"
    )
    write_table(result.scores, _sibling(args.out, "scores"), conv, "out-of-fold scores")
    write_table(result.cases, _sibling(args.out, "cases"), conv, "cases")
    from evaluation.realism_report import auc_forest
    from evaluation.report import build_report

    html = build_report(
        {"realism": result.table, "features that give a method away": result.features},
        [auc_forest(result.table)],
        {
            "organ": args.organ,
            "sources": "; ".join(descriptions),
            "cases": f"{len(cases)} ({sum(c.arm == 'real' for c in cases)} real)",
        },
        args.out.with_suffix(".html"),
        title="Machine Turing test",
        conventions={"realism": conv},
    )
    if args.store:
        from db.session import open_engine, session_scope
        from evaluation.store import store_result

        params = {
            "organ": args.organ,
            "methods": methods,
            "seed": args.seed,
            "discriminators": list(args.discriminators),
            "spec": spec,
            "spacing_mm": list(presentation.spacing_mm),
            "real": args.real,
            "synthetic": list(args.synthetic),
            "cnn_epochs": args.cnn_epochs,
        }
        with session_scope(open_engine(args.db)) as session:
            row = store_result(
                session,
                KIND,
                result_name(args.organ, methods),
                tables={
                    "realism": result.table,
                    "realism_features": result.features,
                    "realism_cases": result.cases,
                },
                conventions=conv,
                params=params,
                summary=result.summary(),
                study=args.for_study,
            )
            print(f"stored as evaluation result {row.id} ({KIND})")
    show = result.table[
        [
            "method",
            "discriminator",
            "auc",
            "auc_ci_low",
            "auc_ci_high",
            "p_value",
            "n_real",
            "n_synthetic",
            "frd",
        ]
    ]
    print(show.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(
        f"wrote {args.out}, {_sibling(args.out, 'features').name}, "
        f"{_sibling(args.out, 'scores').name}, {_sibling(args.out, 'cases').name}, "
        f"{html.name}"
    )
    return 0

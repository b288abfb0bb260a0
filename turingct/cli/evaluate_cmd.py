"""`turingct evaluate ...`: reader statistics, agreement, FID, FRD, DSC/NSD, radiomics.

Every command writes CSV tables with a ``<name>.conventions.txt`` sidecar (see
``evaluation.tables``); the work is done by functions in ``evaluation``.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from core.vocabulary import ORGANS, Task
from turingct.cli import add_db_option, group
from turingct.cli.votes import add_votes_source, load_votes, votes_label


def register(sub) -> None:
    ev = group(sub, "evaluate", "compute evaluation metrics and write tables (+ conventions)")

    p = ev.add_parser(
        "readers",
        help="sensitivity/specificity/accuracy per reader x organ",
        description="Reader table of a visual Turing test (real tumor = positive, "
        "Wilson 95% CIs, binomial test of accuracy vs 0.5).",
    )
    add_votes_source(p)
    p.add_argument("--out", required=True, type=Path, help="output table.csv")
    p.add_argument(
        "--unsure",
        choices=("exclude", "wrong"),
        default="exclude",
        help="unsure answers: excluded from denominators (default) or counted wrong",
    )
    _store_options(p, has_db=True)
    p.set_defaults(func=cmd_readers)

    p = ev.add_parser(
        "agreement",
        help="Cohen/Fleiss kappa, ROC AUC, clustered bootstrap",
        description="Inter-reader agreement, per-reader ROC AUC from confidence "
        "ratings and reader/case-clustered bootstrap CIs.",
    )
    add_votes_source(p)
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--unsure", choices=("exclude", "wrong"), default="exclude")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_agreement)

    p = ev.add_parser(
        "origin",
        help="organ-origin study: per-reader precision/recall",
        description="Organ-origin reader study (liver/pancreas/kidney): per "
        "reader confusion matrix and per-organ precision/recall.",
    )
    add_votes_source(p)
    p.add_argument("--out", required=True, type=Path)
    _store_options(p, has_db=True)
    p.set_defaults(func=cmd_origin)

    p = ev.add_parser(
        "fid",
        help="2.5D FID (axial/coronal/sagittal) between two CT folders",
        description="FID per plane and average between folders of CT files "
        "(or case folders with ct.nii.gz), HU window [-175, 250].",
    )
    p.add_argument("--real", required=True, type=Path)
    p.add_argument("--synthetic", required=True, type=Path)
    ext = p.add_mutually_exclusive_group()
    ext.add_argument(
        "--extractor", default=None, help="registered extractor name (default random-conv-v1)"
    )
    ext.add_argument(
        "--weights",
        type=Path,
        default=None,
        help="local TorchScript feature network (e.g. Inception, RadImageNet)",
    )
    p.add_argument("--input-size", type=int, default=299, help="input size for --weights")
    p.add_argument("--max-slices", type=int, default=32, help="slices per volume and plane")
    p.add_argument("--spacing", type=float, default=None, help="resample to this isotropic mm")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=Path("fid.csv"))
    _store_options(p, for_study=True)
    p.set_defaults(func=cmd_fid)

    p = ev.add_parser(
        "frd",
        help="Frechet Radiomics Distance between real and synthetic tumors",
        description="FRD = log(d^2) of radiomics features (z-scored on the real "
        "set); --cases CSV with columns ct,mask,organ,arm.",
    )
    p.add_argument("--cases", required=True, type=Path)
    p.add_argument("--out", type=Path, default=Path("frd.csv"))
    _store_options(p, for_study=True)
    p.set_defaults(func=cmd_frd)

    p = ev.add_parser(
        "seg",
        help="DSC and NSD per case for two mask folders",
        description="Dice and normalized surface Dice (sub-voxel surfaces, each "
        "file's spacing); files matched by name.",
    )
    p.add_argument("--pred", required=True, type=Path)
    p.add_argument("--truth", required=True, type=Path)
    p.add_argument("--tolerance-mm", type=float, default=2.0)
    p.add_argument("--label", type=int, default=None, help="label value (default: nonzero)")
    p.add_argument("--out", type=Path, default=Path("metrics.csv"))
    _store_options(p, for_study=True)
    p.set_defaults(func=cmd_seg)

    p = ev.add_parser(
        "radiomics",
        help="radiomics features, t-SNE and organ-origin SVM",
        description="pyradiomics features of each tumor (--cases CSV with columns "
        "ct,mask,organ[,arm]; or the catalog's tumors; or a study's "
        "cases), t-SNE map and a 3-way SVM over repeated stratified "
        "splits, next to the readers' organ-origin precision/recall "
        "for an organ-origin study; writes CSVs and report.html.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--cases", type=Path, help="cases CSV: ct,mask,organ[,arm]")
    src.add_argument(
        "--from-catalog",
        action="store_true",
        help="every catalog tumor: real, phantom lesions and synthetic",
    )
    src.add_argument("--study", help="a study's cases (their source volumes' tumor masks)")
    p.add_argument("--dataset", default=None, help="with --from-catalog: one dataset only")
    p.add_argument(
        "--organ",
        action="append",
        choices=ORGANS,
        help="with --from-catalog: organs to include (repeatable; default all)",
    )
    p.add_argument("--out-dir", required=True, type=Path)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--splits", type=int, default=10)
    p.add_argument("--test-size", type=float, default=0.3)
    _store_options(p)
    p.set_defaults(func=cmd_radiomics)

    from turingct.cli import evaluate_methods, evaluate_mrmc, evaluate_realism

    evaluate_mrmc.register(ev)
    evaluate_methods.register(ev)
    evaluate_realism.register(ev)


def _store_options(
    p: argparse.ArgumentParser, *, has_db: bool = False, for_study: bool = False
) -> None:
    p.add_argument(
        "--store",
        action="store_true",
        help="also record the result in the database (dashboards, reports)",
    )
    if for_study:
        p.add_argument(
            "--for-study",
            default=None,
            help="with --store: attach the result to this study (name or id)",
        )
        p.add_argument(
            "--method",
            default=None,
            help="with --store: the synthesis method evaluated (keeps results of "
            "several methods apart on the dashboard)",
        )
    if not has_db:
        add_db_option(p)


def _store(
    args, kind: str, name: str, tables, conventions, *, params=None, summary=None, study=None
) -> None:
    """Record a result when --store was given (one transaction)."""
    if not getattr(args, "store", False):
        return
    from db.session import open_engine, session_scope
    from evaluation.store import store_result

    study = study if study is not None else getattr(args, "for_study", None)
    method = getattr(args, "method", None)
    if method:
        params = {**(params or {}), "method": method}
        name = f"{name} [{method}]"
    with session_scope(open_engine(args.db)) as session:
        row = store_result(
            session,
            kind,
            name,
            tables=tables,
            conventions=conventions,
            params=params,
            summary=summary,
            study=study,
        )
        print(f"stored as evaluation result {row.id} ({kind}: {name})")


def cmd_readers(args) -> int:
    from evaluation.study_stats import reader_statistics
    from evaluation.tables import write_table

    stats = reader_statistics(load_votes(args), "turing", unsure=args.unsure)
    table = stats.table
    conv = {"source": votes_label(args), **stats.conventions}
    csv, side = write_table(table, args.out, conv, "reader table")
    _store(
        args,
        "readers",
        f"reader table (unsure {args.unsure})",
        {"reader_table": table},
        conv,
        params={"unsure": args.unsure},
        study=args.study,
    )
    print(f"wrote {csv} ({len(table)} rows) and {side}")
    return 0


def cmd_agreement(args) -> int:

    from evaluation import agreement
    from evaluation.tables import write_table

    votes = load_votes(args)
    out = args.out_dir
    base = {"source": votes_label(args), "positive_class": "real tumor"}
    pairs = agreement.pairwise_cohen_kappa(votes)
    write_table(
        pairs,
        out / "cohen_kappa.csv",
        {
            **base,
            "unsure": "its own category",
            "kappa": "sklearn cohen_kappa_score, unweighted",
            "interval": "statsmodels cohens_kappa asymptotic SE, Wald 95%, clipped to [-1, 1]",
        },
    )
    fleiss = agreement.fleiss_kappa_ci(votes, n_boot=args.n_boot, seed=args.seed)
    kappa, n = fleiss["kappa"], fleiss["n_cases"]
    auc = agreement.reader_auc(votes)
    write_table(
        auc,
        out / "reader_auc.csv",
        {
            **base,
            "score": "realness = +confidence (real), "
            "-confidence (synthetic), 0 (unsure); confidence 1 when absent",
            "interval": "DeLong standard error, Wald 95% interval clipped to [0, 1]",
        },
    )
    from evaluation.table3 import pooled_by_group

    # per organ x method (and 'all'): pooling methods and organs would mix different questions
    summary = pooled_by_group(votes, n_boot=args.n_boot, seed=args.seed, unsure=args.unsure)
    summary["fleiss_kappa"], summary["fleiss_n_cases"] = kappa, n
    summary["fleiss_low"], summary["fleiss_high"] = fleiss["low"], fleiss["high"]
    write_table(
        summary,
        out / "pooled.csv",
        {
            **base,
            "unsure": args.unsure,
            "seed": args.seed,
            "bootstrap": "two-way: readers resampled, cases resampled within truth class; "
            "percentile 95% interval; per organ x method (a method = its synthetic "
            "cases + the shared real cases), 'all' pools",
            "fleiss": "statsmodels fleiss_kappa over cases answered by every reader, unsure = "
            "category; 95% percentile bootstrap over those cases (fleiss_low/high)",
        },
    )
    print(
        f"wrote {out}/cohen_kappa.csv, reader_auc.csv, pooled.csv (Fleiss kappa {kappa:.3f} "
        f"over {n} cases)"
    )
    return 0


def cmd_origin(args) -> int:
    from evaluation.readers import organ_origin_confusion
    from evaluation.study_stats import reader_statistics
    from evaluation.tables import write_table

    stats = reader_statistics(load_votes(args, task=Task.ORIGIN), Task.ORIGIN)
    votes, table = stats.votes, stats.table
    conv = {"source": votes_label(args), **stats.conventions}
    write_table(table, args.out, conv, "organ-origin reader table")
    _store(
        args,
        "origin",
        "organ-origin reader table",
        {"readers_origin": table},
        conv,
        study=args.study,
    )
    for reader in sorted(votes["reader"].unique()):
        cm = organ_origin_confusion(votes, reader).reset_index()
        slug = re.sub(r"[^A-Za-z0-9_.-]", "_", str(reader))
        path = args.out.with_name(f"{args.out.stem}.confusion.{slug}.csv")
        write_table(cm, path, {"rows": "true organ", "columns": "answer"})
    print(f"wrote {args.out} ({len(table)} rows) and one confusion matrix per reader")
    return 0


def cmd_fid(args) -> int:
    from evaluation import fid
    from evaluation.extractors import get_extractor
    from evaluation.tables import write_table

    options = {"input_size": args.input_size} if args.weights is not None else {}
    extractor = get_extractor(args.extractor, weights=args.weights, device=args.device, **options)
    real, syn = fid.collect_ct_files(args.real), fid.collect_ct_files(args.synthetic)
    table = fid.fid_2p5d(
        fid.load_volumes(real, args.spacing),
        fid.load_volumes(syn, args.spacing),
        extractor,
        max_slices=args.max_slices,
        progress=True,
    )
    conv = {
        "real": f"{args.real} ({len(real)} volumes)",
        "synthetic": f"{args.synthetic} ({len(syn)} volumes)",
        **fid.conventions(extractor, args.max_slices, args.spacing),
    }
    write_table(table, args.out, conv, "FID (2.5D)")
    _store(
        args,
        "fid",
        f"FID {extractor.name}",
        {"fid": table},
        conv,
        params={
            "extractor": extractor.name,
            "max_slices": args.max_slices,
            "spacing": args.spacing,
        },
    )
    for row in table.itertuples():
        print(f"{row.plane:9s} FID {row.fid:10.4f}")
    print(f"extractor {extractor.name}: {extractor.limits}\nwrote {args.out}")
    return 0


def cmd_frd(args) -> int:
    import pandas as pd

    from evaluation import frd, radiomics
    from evaluation.tables import EvaluationInputError, write_table

    cases = radiomics.read_cases(args.cases)
    if "arm" not in cases.columns or not {"real", "synthetic"} <= set(cases["arm"]):
        raise EvaluationInputError(
            args.cases,
            "needs an arm column with both real and synthetic rows",
            "add arm=real/synthetic to every row",
        )
    spec = radiomics.extractor_settings()
    feats = radiomics.extract_cases(cases, spec, progress=True)
    x = radiomics.feature_matrix(feats)
    rows = []
    groups = [("all", feats)] + (
        [(o, g) for o, g in feats.groupby("organ")] if feats["organ"].nunique() > 1 else []
    )
    for organ, part in groups:
        xr, xs = x.loc[part.index[part.arm == "real"]], x.loc[part.index[part.arm == "synthetic"]]
        if len(xr) >= 2 and len(xs) >= 2:
            rows.append({"organ": organ, **frd.frechet_radiomics_distance(xr, xs)})
    table = pd.DataFrame(rows)
    conv = {"cases": str(args.cases), **frd.conventions(spec)}
    write_table(table, args.out, conv, "FRD")
    _store(args, "frd", "FRD", {"frd": table}, conv, params={"spec": spec})
    print(table.to_string(index=False))
    return 0


def cmd_seg(args) -> int:
    from evaluation import segmentation
    from evaluation.tables import write_table

    table = segmentation.evaluate_folders(
        args.pred, args.truth, tolerance_mm=args.tolerance_mm, label=args.label, progress=True
    )
    conv = {
        "pred": str(args.pred),
        "truth": str(args.truth),
        "label": "nonzero" if args.label is None else args.label,
        **segmentation.conventions(args.tolerance_mm),
    }
    write_table(table, args.out, conv, "segmentation metrics")
    _store(
        args,
        "seg",
        f"DSC/NSD {args.pred.name}",
        {"seg": table},
        conv,
        params={"tolerance_mm": args.tolerance_mm},
        summary={"dsc_mean": table.dsc.mean(), "nsd_mean": table.nsd.mean()},
    )
    print(
        f"{len(table)} cases: mean DSC {table.dsc.mean():.4f}, mean NSD@{args.tolerance_mm:g}mm "
        f"{table.nsd.mean():.4f}\nwrote {args.out}"
    )
    return 0


def cmd_radiomics(args) -> int:
    from evaluation import figures, radiomics
    from evaluation.report import build_report
    from evaluation.tables import write_table

    spec = radiomics.extractor_settings()
    feats, source, reader_origin = _radiomics_features(args, spec)
    conv = {"cases": source, **radiomics.conventions(spec, args.seed, args.splits, args.test_size)}
    out = args.out_dir
    write_table(feats, out / "features.csv", conv, "radiomics features")
    x = radiomics.feature_matrix(feats)
    emb = radiomics.tsne_embedding(x, seed=args.seed)
    tsne = feats[
        [
            c
            for c in ("ct", "mask", "case", "dataset", "organ", "arm", "tumor_kind", "method")
            if c in feats.columns
        ]
    ].copy()
    tsne["tsne_1"], tsne["tsne_2"] = emb[:, 0], emb[:, 1]
    write_table(tsne, out / "tsne.csv", conv, "t-SNE map")
    splits = radiomics.svm_organ_origin(
        x, feats["organ"], n_splits=args.splits, test_size=args.test_size, seed=args.seed
    )
    summary = radiomics.summarize_svm(splits)
    write_table(splits, out / "svm_splits.csv", conv, "SVM per split")
    write_table(summary, out / "svm_summary.csv", conv, "SVM summary")
    from evaluation.catalog_data import origin_comparison

    comparison = origin_comparison(summary, reader_origin)
    write_table(comparison, out / "origin_comparison.csv", conv, "SVM vs readers")
    figs = [
        figures.tsne_scatter(emb, feats["organ"], feats.get("arm"), seed=args.seed),
        figures.svm_vs_readers(summary, reader_origin),
    ]
    build_report(
        {"svm_summary": summary, "origin_comparison": comparison},
        figs,
        {"cases": source, "n_tumors": len(x)},
        out / "report.html",
        title="Radiomics organ origin",
        conventions={"radiomics": conv},
    )
    tables = {
        "svm_summary": summary,
        "svm_splits": splits,
        "tsne": tsne,
        "origin_comparison": comparison,
    }
    if reader_origin is not None:
        tables["readers_origin"] = reader_origin
    _store(
        args,
        "radiomics",
        "radiomics organ origin",
        tables,
        conv,
        params={
            "spec": spec,
            "seed": args.seed,
            "splits": args.splits,
            "test_size": args.test_size,
            "source": source,
        },
        study=args.study,
    )
    print(comparison.to_string(index=False))
    print(f"wrote {out}/features.csv, tsne.csv, svm_splits.csv, svm_summary.csv, report.html")
    return 0


def _radiomics_features(args, spec):
    """(features table, source description, readers' organ-origin table or None)."""
    from evaluation import radiomics

    if args.cases is not None:
        cases = radiomics.read_cases(args.cases)
        return radiomics.extract_cases(cases, spec, progress=True), str(args.cases), None
    from db.session import open_engine, session_scope
    from evaluation import catalog_data

    with session_scope(open_engine(args.db)) as session:
        if args.from_catalog:
            feats = catalog_data.catalog_tumor_features(
                session, dataset=args.dataset, organs=args.organ, spec=spec, progress=True
            )
            return feats, f"catalog {args.dataset or '(all datasets)'}", None
        feats = catalog_data.study_tumor_features(session, args.study, spec=spec, progress=True)
        reader_origin = _study_origin_readers(session, args.study)
    return feats, f"study {args.study}", reader_origin


def _study_origin_readers(session, study):
    """Readers' organ-origin table of an organ-origin study with answers, else None."""
    from db.models import Study, StudyDesign
    from evaluation.store import resolve_study_id
    from evaluation.study_stats import study_reader_statistics
    from evaluation.tables import EvaluationInputError

    found = session.get(Study, resolve_study_id(session, study))
    if found.design != StudyDesign.ORGAN_ORIGIN:
        return None
    try:
        return study_reader_statistics(session, found.name, found.design).table
    except EvaluationInputError:
        return None  # no origin answers yet: the SVM is shown alone

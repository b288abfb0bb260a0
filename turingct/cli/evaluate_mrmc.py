"""`turingct evaluate mrmc`: Obuchowski-Rockette MRMC ROC analysis (registered by evaluate_cmd)."""

from __future__ import annotations

from pathlib import Path

from turingct.cli import add_db_option


def register(ev) -> None:
    p = ev.add_parser(
        "mrmc",
        help="MRMC ROC analysis (Obuchowski-Rockette, Hillis ddf): RRRC, FRRC, RRFC",
        description="Reader-averaged AUCs, their differences and each modality's AUC with CIs "
        "and the test of AUC = 0.5, generalizing to new readers and cases. Input: "
        "--ratings CSV (reader,modality,case,truth,rating; truth 1 = positive; "
        "higher rating = more confident positive; fully crossed) or --study "
        "(positive = real tumor; rating = +confidence for 'real', -confidence for "
        "'synthetic', 0 for 'unsure'; modality = method, real cases shared).",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ratings", type=Path, help="ratings CSV: reader,modality,case,truth,rating")
    src.add_argument("--study", help="study name or id in the database")
    p.add_argument("--organ", default=None, help="with --study: one organ's cases only")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="mrmc.json (mrmc.csv and mrmc.html are written next to it)",
    )
    p.add_argument(
        "--covariance",
        choices=("jackknife", "delong"),
        default="jackknife",
        help="OR covariance estimate (default jackknife)",
    )
    p.add_argument(
        "--store",
        action="store_true",
        help="also record the result in the database (dashboards, reports)",
    )
    add_db_option(p)
    p.set_defaults(func=cmd_mrmc)


def cmd_mrmc(args) -> int:
    from evaluation import mrmc, study_mrmc

    if args.ratings is not None:
        ratings, source = mrmc.read_ratings(args.ratings), args.ratings
        result = study_mrmc.analyse(ratings, source, covariance=args.covariance)
    else:
        from db.session import open_engine, session_scope

        with session_scope(open_engine(args.db)) as session:
            ratings = study_mrmc.study_ratings(session, args.study, args.organ)
        source = f"study {args.study}" + (f", organ {args.organ}" if args.organ else "")
        result = study_mrmc.analyse(ratings, None, covariance=args.covariance, crossed=False)
    conv = study_mrmc.conventions(result, str(source), from_study=args.study is not None)
    out, csv, html = study_mrmc.write_outputs(result, args.out, conv)
    if args.store:
        from db.session import open_engine, session_scope
        from evaluation.store import store_result

        name = f"MRMC {args.covariance}" + (f" {args.organ}" if args.organ else "")
        with session_scope(open_engine(args.db)) as session:
            row = store_result(
                session,
                "mrmc",
                name,
                tables={"mrmc": mrmc.result_table(result)},
                conventions=conv,
                params={"covariance": args.covariance, "organ": args.organ},
                summary={"mrmc": result},
                study=args.study,
            )
            print(f"stored as evaluation result {row.id} (mrmc: {name})")
    _print_summary(result)
    print(f"wrote {out}, {csv} and {html}")
    return 0


def _print_summary(result: dict) -> None:
    for m in result["modalities"]:
        s = result["rrrc"]["single"].get(m)
        line = f"modality {m}: mean AUC {result['mean_auc'][m]:.4f}"
        if s and s["ci95"][0] == s["ci95"][0]:  # not NaN
            line += (
                f", RRRC 95% CI [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}] (df {s['df']:.2f}),"
                f" p(AUC = 0.5) = {s['p_vs_chance']:.3g}"
            )
        print(line)
    rrrc = result["rrrc"]
    if len(result["modalities"]) > 1 and rrrc["f"] == rrrc["f"]:
        print(f"RRRC: F = {rrrc['f']:.4f}, ddf = {rrrc['ddf']:.3f}, p = {rrrc['p']:.4g}")
        for d in rrrc["differences"]:
            a, b = d["modalities"]
            print(f"  {a} - {b}: {d['estimate']:+.4f} [{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]")

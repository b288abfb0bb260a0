"""`turingct evaluate methods`: odds ratios of "called real" per synthesis method (GEE)."""

from __future__ import annotations

from pathlib import Path

from turingct.cli.votes import add_votes_source, load_votes, votes_label


def register(ev) -> None:
    p = ev.add_parser(
        "methods",
        help="compare methods' fooling rates (GEE, clustered by reader and case)",
        description="Logistic GEE of 'answered real' on the arm (real, or synthetic of each "
        "method), sandwich covariance clustered by reader and by case: odds ratio "
        "and 95% CI of every method vs the shared real arm and of every method "
        "pair (synthetic cases of different methods are different cases: unpaired).",
    )
    add_votes_source(p)
    p.add_argument("--out", required=True, type=Path, help="output table.csv")
    p.add_argument(
        "--unsure",
        choices=("exclude", "wrong"),
        default="exclude",
        help="unsure answers: dropped (default) or counted wrong",
    )
    p.set_defaults(func=cmd_methods)


def cmd_methods(args) -> int:
    from evaluation.comparisons import CONVENTIONS, method_comparison
    from evaluation.tables import EvaluationInputError, write_table

    votes = load_votes(args)
    if "method" not in votes.columns:
        raise EvaluationInputError(
            args.votes,
            "has no method column",
            "add method (blank for real cases) to compare methods",
        )
    table = method_comparison(votes, unsure=args.unsure)
    conv = {"source": votes_label(args), "unsure": args.unsure, **CONVENTIONS}
    write_table(table, args.out, conv, "method comparison")
    for row in table.itertuples():
        print(
            f"{row.method_a} vs {row.method_b}: OR {row.odds_ratio:.3g} "
            f"[{row.or_low:.3g}, {row.or_high:.3g}], p = {row.p_value:.3g} {row.note}"
        )
    print(f"wrote {args.out}")
    return 0

"""`turingct report STUDY --out report.html`: the researcher's self-contained study report."""

from __future__ import annotations

from pathlib import Path

from turingct.cli import add_db_option


def register(sub) -> None:
    p = sub.add_parser(
        "report",
        help="self-contained HTML report of a study (+ CSV for every table)",
        description="Settings and provenance, blinding audit, reader table, forest plot, "
        "agreement, time per case, stored FID/FRD/DSC/NSD/radiomics/benchmark "
        "results and the unblinding key (researcher-only) of one study. Tables are "
        "also written as report_tables/<name>.csv next to the HTML.",
    )
    p.add_argument("study", help="study name or id")
    p.add_argument("--out", type=Path, default=Path("report.html"))
    p.add_argument("--unsure", choices=("exclude", "wrong"), default="exclude")
    p.add_argument("--no-key", action="store_true", help="leave the unblinding key out")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap replicates")
    add_db_option(p)
    p.set_defaults(func=cmd_report)


def cmd_report(args) -> int:
    from db.session import open_engine, session_scope
    from evaluation.study_report import write_study_report

    with session_scope(open_engine(args.db)) as session:
        html, tables = write_study_report(
            session,
            args.study,
            args.out,
            unsure=args.unsure,
            include_key=not args.no_key,
            n_boot=args.n_boot,
        )
    print(f"wrote {html} and {len(tables)} tables in {tables[0].parent if tables else '-'}")
    return 0

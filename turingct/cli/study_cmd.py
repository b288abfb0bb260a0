"""`turingct study create|list|show|close|reopen|remove-reader|key|results|progress|export-dicom|push`:
blinded reader studies."""

from __future__ import annotations

import json

from turingct.cli import add_db_option, group


def register(sub) -> None:
    study = group(sub, "study", "create blinded reader studies, watch progress, export results")

    create = study.add_parser(
        "create",
        help="select cases, export blinded copies, audit the blinding, assign readers",
        description="Build a blinded study from a spec YAML (see studies/examples/).",
    )
    create.add_argument("spec", help="study spec YAML")
    create.add_argument(
        "--export-root",
        default=None,
        help="folder for blinded exports (default: <data dir>/studies)",
    )
    create.add_argument(
        "--base-url", default="http://localhost:8501", help="app URL used in printed invite links"
    )
    add_db_option(create)
    create.set_defaults(func=_create)

    lst = study.add_parser("list", help="table of studies")
    add_db_option(lst)
    lst.set_defaults(func=_list)

    for name, helptext, func in (
        ("show", "details, audit and progress of a study", _show),
        ("close", "close a study (no further answers)", _close),
        ("reopen", "reopen a closed study", _reopen),
        ("progress", "per-reader answered/total and time", _progress),
    ):
        p = study.add_parser(name, help=helptext)
        p.add_argument("study", help="study name or id")
        add_db_option(p)
        p.set_defaults(func=func)

    rm = study.add_parser("remove-reader", help="take a reader off a study (answers are kept)")
    rm.add_argument("study", help="study name or id")
    rm.add_argument("username", help="the reader to remove")
    add_db_option(rm)
    rm.set_defaults(func=_remove_reader)

    for name, helptext, func in (
        ("key", "write the unblinding key CSV (code, arm, organ, method, source)", _key),
        ("results", "write one CSV row per answer", _results),
    ):
        p = study.add_parser(name, help=helptext)
        p.add_argument("study", help="study name or id")
        p.add_argument("--out", required=True, help="output CSV path")
        add_db_option(p)
        p.set_defaults(func=func)

    exp = study.add_parser(
        "export-dicom",
        help="write every blinded case as a de-identified DICOM CT series",
        description="One folder per case code with a CT series whose headers are identical "
        "across cases except UIDs and pixels (the study's window as default VOI), "
        "plus cases.csv (code -> UIDs). Re-runs the blinding audit on the headers.",
    )
    exp.add_argument("study", help="study name or id")
    exp.add_argument("--out", required=True, help="new (or empty) output folder")
    add_db_option(exp)
    exp.set_defaults(func=_export_dicom)

    push = study.add_parser(
        "push",
        help="send the study's DICOM export to a PACS (DICOMweb STOW-RS or C-STORE)",
        description="Export the study as DICOM (see export-dicom) and store it on a PACS.",
    )
    push.add_argument("study", help="study name or id")
    push.add_argument(
        "--pacs",
        required=True,
        metavar="URL",
        help="DICOMweb base URL (http://host:8042/dicom-web, STOW-RS) or DIMSE "
        "address (dicom://AET@host:4242, C-STORE)",
    )
    push.add_argument("--out", help="also keep the export in this new folder")
    add_db_option(push)
    push.set_defaults(func=_push)


def _engine(args):
    from db.session import open_engine

    return open_engine(args.db)


def _create(args) -> int:
    from db.session import session_scope
    from studies.accounts import OPERATOR, create_invite, invite_link, require_user
    from studies.admin import create_study
    from studies.audit import AuditResult
    from studies.matching import pairs_line, size_match_line

    with session_scope(_engine(args)) as session:
        study = create_study(session, args.spec, actor=OPERATOR, export_root=args.export_root)
        n_cases = len(study.cases)
        audit = AuditResult.from_dict(study.audit)
        match = study.audit.get("size_match") or {}
        links = []
        for username in study.spec["readers"]:
            user = require_user(session, username)
            if user.password_hash is None:
                links.append(
                    (
                        username,
                        invite_link(create_invite(session, user, actor=OPERATOR), args.base_url),
                    )
                )
        name, export_dir = study.name, study.export_dir
    print(f"study {name!r}: {n_cases} blinded cases in {export_dir}")
    print(audit.summary())
    print(size_match_line(match))
    if pairs_line(match):
        print(pairs_line(match))
    for username, link in links:
        print(f"invite for {username} (single use, 72 h): {link}")
    print(f"next: `turingct study progress {name}`")
    return 0


def _list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.admin import list_studies

    with session_scope(_engine(args)) as session:
        rows = list_studies(session, OPERATOR)
    if not rows:
        print("no studies yet; create one with `turingct study create SPEC.yaml`")
        return 0
    table = Table("id", "name", "design", "status", "cases", "readers", "audit AUC", "created")
    for r in rows:
        table.add_row(
            str(r.id),
            r.name,
            r.design,
            r.status,
            str(r.n_cases),
            str(r.n_readers),
            "-" if r.audit_auc is None else f"{r.audit_auc:.2f}",
            r.created_at,
        )
    Console().print(table)
    return 0


def _show(args) -> int:
    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.admin import show_study

    with session_scope(_engine(args)) as session:
        info = show_study(session, OPERATOR, args.study)
    print(json.dumps(info, indent=2, default=str))
    return 0


def _close(args) -> int:
    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.admin import close_study

    with session_scope(_engine(args)) as session:
        name = close_study(session, OPERATOR, args.study).name
    print(f"study {name!r} closed; answers are kept (`turingct study results {name} --out ...`)")
    return 0


def _reopen(args) -> int:
    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.admin import reopen_study

    with session_scope(_engine(args)) as session:
        name = reopen_study(session, OPERATOR, args.study).name
    print(f"study {name!r} is open again; its readers can continue")
    return 0


def _remove_reader(args) -> int:
    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.admin import remove_reader

    with session_scope(_engine(args)) as session:
        done = remove_reader(session, OPERATOR, args.study, args.username)
    print(
        f"{done.username} removed from study {done.study!r}: {done.withdrawn} cases "
        f"withdrawn, {done.answers_kept} answers kept"
    )
    return 0


def _progress(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.admin import progress

    with session_scope(_engine(args)) as session:
        rows = progress(session, OPERATOR, args.study)
    table = Table("reader", "years", "answered", "total", "median s/case", "last answer")
    for r in rows:
        table.add_row(
            r.username,
            "-" if r.years_experience is None else str(r.years_experience),
            str(r.answered),
            str(r.total),
            "-" if r.median_seconds is None else f"{r.median_seconds:.1f}",
            r.last_answer_at or "-",
        )
    Console().print(table)
    return 0


def _csv(args, rows_fn, columns_name: str, what: str) -> int:
    from db.session import session_scope
    from studies import admin
    from studies.accounts import OPERATOR

    with session_scope(_engine(args)) as session:
        rows = rows_fn(session, OPERATOR, args.study)
    path = admin.write_csv(rows, getattr(admin, columns_name), args.out)
    print(f"{len(rows)} {what} written to {path}")
    return 0


def _key(args) -> int:
    from studies.admin import key_rows

    return _csv(args, key_rows, "KEY_COLUMNS", "cases")


def _results(args) -> int:
    from studies.admin import results_rows

    return _csv(args, results_rows, "RESULT_COLUMNS", "answers")


def _export_dicom(args) -> int:
    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.dicom_export import export_study_dicom

    with session_scope(_engine(args)) as session:
        export = export_study_dicom(session, OPERATOR, args.study, args.out)
    print(
        f"{export.n_cases} cases ({export.n_files} DICOM files) written to {export.out_dir}; "
        "code -> UIDs in cases.csv"
    )
    print(f"DICOM headers: {export.audit.summary()}")
    return 0


def _push(args) -> int:
    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.dicom_export import push_study

    with session_scope(_engine(args)) as session:
        export = push_study(session, OPERATOR, args.study, args.pacs, args.out)
    print(f"{export.n_cases} studies ({export.n_files} instances) stored on {args.pacs}")
    for code, uid in sorted(export.study_uids.items()):
        print(f"  {code}  StudyInstanceUID {uid}")
    print(f"DICOM headers: {export.audit.summary()}")
    return 0

"""`turingct data import|list`: register datasets in the catalog and show what is there."""

from __future__ import annotations

from core.vocabulary import ORGANS
from turingct.cli import add_db_option, group

FORMATS = ("msd", "kits", "atlas", "totalseg", "manifest", "dicom")


def register(sub) -> None:
    data = group(sub, "data", "register datasets (by path and hash) and list the catalog")
    imp = data.add_parser(
        "import",
        help="register a dataset folder or manifest in the catalog",
        description="Register volumes, organ masks and tumor masks by path and sha256 (no "
        "copies). All cases are validated before anything is written.",
    )
    imp.add_argument(
        "path",
        nargs="?",
        help="dataset folder (msd/kits/atlas), TotalSegmentator "
        "output (multi-label file or folder), manifest CSV, or a folder of DICOM "
        "files (any layout; not needed with --pacs)",
    )
    imp.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    imp.add_argument(
        "--organ",
        action="append",
        choices=ORGANS,
        help="register only this organ (repeatable; default: all found)",
    )
    imp.add_argument("--name", help="dataset name (default: folder or file name)")
    imp.add_argument("--ct", help="totalseg: the CT the segmentation belongs to")
    imp.add_argument("--class-map", help="totalseg: JSON class map for a multi-label file")
    imp.add_argument("--case", dest="case_id", help="totalseg: case id (default: CT file name)")
    imp.add_argument(
        "--label-map",
        action="append",
        metavar="JSON_OR_NAME=TARGET",
        help="dicom: segment/ROI name -> liver|pancreas|kidney[:tumor]|tumor|ignore "
        "(a JSON file or NAME=TARGET; repeatable) for names the defaults miss",
    )
    imp.add_argument(
        "--resample-nonuniform",
        action="store_true",
        help="dicom: interpolate series with irregular slice spacing (or missing "
        "slices) onto their median spacing instead of refusing them",
    )
    imp.add_argument(
        "--pacs",
        metavar="URL",
        help="dicom: PACS to pull from: DICOMweb base URL "
        "(http://host:8042/dicom-web, QIDO-RS + WADO-RS) or DIMSE address "
        "(dicom://AET@host:4242, C-GET); needs --study-uid",
    )
    imp.add_argument("--study-uid", help="dicom: StudyInstanceUID to pull from --pacs")
    add_db_option(imp)
    imp.set_defaults(func=_import)

    lst = data.add_parser("list", help="table of registered volumes")
    lst.add_argument("--dataset", help="only this dataset")
    add_db_option(lst)
    lst.set_defaults(func=_list)


def _import(args) -> int:
    from catalog.volumes import CatalogError, import_dataset
    from db.session import open_engine, session_scope

    path, name, label_map = args.path, args.name, None
    if args.fmt == "dicom":
        from synth_backend.dicom.labels import parse_label_map

        label_map = parse_label_map(args.label_map)
    elif args.label_map or args.pacs or args.resample_nonuniform:
        raise CatalogError(
            "--label-map, --resample-nonuniform and --pacs are for "
            "--format dicom; drop them or use --format dicom"
        )
    if args.pacs:
        if args.fmt != "dicom" or not args.study_uid or path:
            raise CatalogError("--pacs needs --format dicom and --study-uid UID, and no PATH")
        from core.settings import data_dir
        from synth_backend.dicom.pacs import pull

        path = pull(args.pacs, args.study_uid, data_dir() / "dicom" / "pacs")
        name = name or f"pacs-{args.study_uid}"
        print(f"pulled study {args.study_uid} from {args.pacs} into {path}")
    elif not path:
        raise CatalogError("PATH is required (or, for --format dicom, --pacs URL --study-uid UID)")
    engine = open_engine(args.db)
    with session_scope(engine) as session:
        report = import_dataset(
            session,
            args.fmt,
            path,
            name=name,
            organs=args.organ,
            ct=args.ct,
            class_map=args.class_map,
            case_id=args.case_id,
            label_map=label_map,
            resample_nonuniform=args.resample_nonuniform,
            progress=True,
        )
    for note in report.notes:
        print(f"note: {note}")
    print(
        f"dataset {report.dataset!r}: {len(report.added)} case(s) added, "
        f"{len(report.skipped_existing)} already registered"
    )
    if report.skipped_organs:
        print(f"organs not in the field of view (skipped): {', '.join(report.skipped_organs)}")
    print("next: `turingct data list`")
    return 0


def _list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from catalog.volumes import list_volumes
    from db.session import open_engine, session_scope

    with session_scope(open_engine(args.db)) as session:
        rows = list_volumes(session, args.dataset)
    if not rows:
        print(
            "the catalog is empty; register data with `turingct data import` or `turingct phantom`"
        )
        return 0
    table = Table(title=f"{len(rows)} volume(s)")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console(width=160).print(table)
    return 0

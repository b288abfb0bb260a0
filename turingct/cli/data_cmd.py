"""`turingct data import|list`: register datasets in the catalog and show what is there."""

from __future__ import annotations

from turingct.cli import add_db_option, group

FORMATS = ("msd", "kits", "atlas", "totalseg", "manifest")
ORGANS = ("liver", "pancreas", "kidney")


def register(sub) -> None:
    data = group(sub, "data", "register datasets (by path and hash) and list the catalog")
    imp = data.add_parser(
        "import", help="register a dataset folder or manifest in the catalog",
        description="Register volumes, organ masks and tumor masks by path and sha256 (no "
                    "copies). All cases are validated before anything is written.")
    imp.add_argument("path", help="dataset folder (msd/kits/atlas), TotalSegmentator output "
                                  "(multi-label file or folder) or manifest CSV")
    imp.add_argument("--format", required=True, choices=FORMATS, dest="fmt")
    imp.add_argument("--organ", action="append", choices=ORGANS,
                     help="register only this organ (repeatable; default: all found)")
    imp.add_argument("--name", help="dataset name (default: folder or file name)")
    imp.add_argument("--ct", help="totalseg: the CT the segmentation belongs to")
    imp.add_argument("--class-map", help="totalseg: JSON class map for a multi-label file")
    imp.add_argument("--case", dest="case_id", help="totalseg: case id (default: CT file name)")
    add_db_option(imp)
    imp.set_defaults(func=_import)

    lst = data.add_parser("list", help="table of registered volumes")
    lst.add_argument("--dataset", help="only this dataset")
    add_db_option(lst)
    lst.set_defaults(func=_list)


def _import(args) -> int:
    from db.session import open_engine, session_scope
    from synth_backend.catalog import import_dataset

    engine = open_engine(args.db)
    with session_scope(engine) as session:
        report = import_dataset(session, args.fmt, args.path, name=args.name, organs=args.organ,
                                ct=args.ct, class_map=args.class_map, case_id=args.case_id,
                                progress=True)
    print(f"dataset {report.dataset!r}: {len(report.added)} case(s) added, "
          f"{len(report.skipped_existing)} already registered")
    if report.skipped_organs:
        print(f"organs not in the field of view (skipped): {', '.join(report.skipped_organs)}")
    print("next: `turingct data list`")
    return 0


def _list(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from db.session import open_engine, session_scope
    from synth_backend.catalog import list_volumes

    with session_scope(open_engine(args.db)) as session:
        rows = list_volumes(session, args.dataset)
    if not rows:
        print("the catalog is empty; register data with `turingct data import` "
              "or `turingct phantom`")
        return 0
    table = Table(title=f"{len(rows)} volume(s)")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    Console(width=160).print(table)
    return 0

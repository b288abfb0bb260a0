"""`turingct demo`: the main job on the built-in phantom cohort (what `make demo` runs)."""

from __future__ import annotations

from turingct.cli import add_db_option


def register(sub) -> None:
    demo = sub.add_parser(
        "demo",
        help="phantom cohort -> catalog -> synthetic tumors -> blinded demo study",
        description="Build a phantom cohort, register it, synthesize tumors with the "
        "hand-crafted and Pixel2Cancer methods, and create a blinded demo study "
        "with a demo reader. Re-running resumes and skips finished steps.",
    )
    demo.add_argument("--out", help="data folder (default: $TURINGCT_DATA_DIR or ./data)")
    demo.add_argument("--n", type=int, default=12, help="phantom cases (default 12)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--serve", action="store_true", help="start the app when done")
    demo.add_argument("--port", type=int, default=8501)
    add_db_option(demo)
    demo.set_defaults(func=_demo)


def _demo(args) -> int:
    import os
    from pathlib import Path

    from turingct.demo import run_demo

    if args.out:
        os.environ["TURINGCT_DATA_DIR"] = str(Path(args.out).resolve())
    result = run_demo(Path(args.out) if args.out else None, args.db, n_cases=args.n, seed=args.seed)
    db_flag = f" --db {result.db_url}" if (args.db or args.out) else ""
    print("\n== turingct demo: done ==")
    print(f"database:        {result.db_url}")
    print(f"phantom cohort:  {result.cohort}")
    for name, path in result.synthetic.items():
        print(f"synthetic:       {name:24s} {path}")
    for name, export in result.studies.items():
        if name != result.study:
            print(f"blinded study:   {name}  ({export})")
    print(f"blinded study:   {result.study}  ({result.export_dir})")
    print(f"                 {result.audit}")
    for user, password in result.accounts.items():
        print(f"account:         {user} / {password}")
    if not result.accounts:
        creds = Path(result.cohort).parent / "demo-credentials.txt"
        print(f"accounts:        demo (reader), researcher: passwords in {creds}")
    print("\nnext:")
    print(
        f"  turingct serve{db_flag}        # then open http://localhost:{args.port} and log "
        "in as demo"
    )
    print(f"  turingct study results {result.study}{db_flag} --out answers.csv")
    print(f"  turingct evaluate readers --study {result.study}{db_flag} --out readers.csv")
    if args.serve:
        from turingct.cli import main

        return main(["serve", "--port", str(args.port), *(["--db", args.db] if args.db else [])])
    return 0

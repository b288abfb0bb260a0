"""Answers under load: N simulated readers answer one study at once; nothing may be lost.

Each reader logs in (``studies.accounts.authenticate``) and then loops exactly like the reader
page: ``current_case`` + ``case_volume_bytes`` (one short session), a random think time, then
``submit_answer`` in its own short session, as ``app/reading_ui.py`` does. Some submits are
doubled on purpose: two concurrent submits with the same idempotency key (double click), a
resubmit of the same key after the acknowledgement (network retry), and a second tab sending a
different answer with a fresh key (must be rejected: the study does not allow changes). A
submit that raises (e.g. "database busy") is retried with the same key until acknowledged, as
the page tells the reader to do.

Afterwards the database is checked against what was acknowledged: every acknowledged
(reader, case) has exactly one answer row with the acknowledged value, no row exists that was
never acknowledged, each answer has exactly one 'created' event, assignment progress matches
the answers and ``current_case`` resumes at the first unanswered position.

Run: ``.venv/bin/python benchmarks/answers_load.py --db URL --readers 50 --duration 30
--mode threads|processes`` (default URL: a fresh SQLite file in a temporary folder). The
database must be empty or throw-away: the benchmark migrates it and adds its own study.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import secrets
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PASSWORD = "load-test-password"  # throw-away accounts in a throw-away database
_COUNT_LOCK = threading.Lock()
MAX_TRIES = 20  # per acknowledged submit; each try already retries "database is locked"


@dataclass(frozen=True)
class LoadConfig:
    """One load run. Think times in seconds (uniform in ``think_s``); probabilities per case."""

    db_url: str
    readers: int = 50
    duration_s: float = 30.0
    mode: str = "threads"  # threads | processes
    procs: int | None = None  # processes mode: worker processes (default: one/reader)
    cases: int = 200
    think_s: tuple[float, float] = (0.2, 2.0)
    p_double: float = 0.10  # two concurrent submits, same key (double click)
    p_retry: float = 0.10  # resubmit the same key after the ack (network retry)
    p_other_tab: float = 0.05  # fresh key, other value (second tab): must be rejected
    seed: int = 0


@dataclass
class ReaderLog:
    """What one simulated reader saw: acknowledged answers and per-call latencies (s)."""

    username: str
    acked: dict[str, str] = field(default_factory=dict)  # case code -> acknowledged value
    submit_s: list[float] = field(default_factory=list)
    view_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)  # exceptions retried
    anomalies: list[str] = field(default_factory=list)  # outcomes that must never happen
    finished: bool = False
    started: float = 0.0  # wall clock (time.time())
    ended: float = 0.0


@dataclass
class LoadReport:
    """Throughput, latency percentiles (ms) and the integrity check."""

    backend: str
    mode: str
    readers: int
    duration_s: float
    answers: int
    answers_per_s: float
    submits: int
    submit_p50_ms: float
    submit_p99_ms: float
    submit_max_ms: float
    view_p50_ms: float
    view_p99_ms: float
    statuses: dict[str, int]
    retried_errors: int
    lost: int
    duplicated: int
    unacknowledged: int
    wrong_value: int
    bad_events: int
    bad_progress: int
    bad_resume: int
    anomalies: list[str]
    finished_readers: int

    @property
    def ok(self) -> bool:
        """True when the database holds exactly the acknowledged answers."""
        return not (
            self.lost
            or self.duplicated
            or self.unacknowledged
            or self.wrong_value
            or self.bad_events
            or self.bad_progress
            or self.bad_resume
            or self.anomalies
        )


def setup_study(
    db_url: str, work_dir: str | Path, *, readers: int, cases: int, seed: int = 0
) -> tuple[int, list[str]]:
    """Migrate ``db_url`` and add a ``cases``-case turing study with ``readers`` accounts
    (``load-reader-000``...; password :data:`PASSWORD`), each with its seeded order.

    Catalog rows point at one tiny NIfTI per case under ``work_dir``: the study layer is
    exercised, not the blinding export (its own tests cover that). Returns (study id, names).
    """
    import numpy as np
    from sqlalchemy import select

    from db.models import (
        Arm,
        Dataset,
        DatasetFormat,
        Origin,
        Study,
        StudyCase,
        StudyDesign,
        Volume,
    )
    from db.session import make_engine, session_scope, upgrade
    from studies.accounts import create_user
    from studies.assignment import assign
    from studies.blinding import new_code
    from studies.spec import parse_spec
    from synth_backend.io import save_volume, sha256_file

    upgrade(db_url)
    rng = np.random.default_rng(seed)
    work = Path(work_dir)
    names = [f"load-reader-{i:03d}" for i in range(readers)]
    name = f"answers-load-{secrets.token_hex(4)}"
    spec = parse_spec(
        {
            "name": name,
            "design": "turing",
            "organs": ["liver"],
            "cases_per_organ": {"real": cases // 2, "synthetic": cases - cases // 2},
            "presentation": {"spacing_mm": 1.5, "crop": {"size": [12, 12, 12], "unit": "mm"}},
            "readers": names,
            "seed": seed,
            # scripted readers answer at once: no minimum time on case
            "reading": {"min_seconds_on_case": 0},
        },
        source="answers_load",
    )
    engine = make_engine(db_url)
    try:
        with session_scope(engine) as s:
            ds = s.scalar(select(Dataset).where(Dataset.name == "answers-load")) or Dataset(
                name="answers-load", format=DatasetFormat.PHANTOM, root_path=str(work)
            )
            s.add(ds)
            study = Study(
                name=name,
                design=StudyDesign.TURING,
                spec=spec.to_dict(),
                spec_yaml="",
                seed=seed,
                allow_changes=False,
                educational=False,
                export_dir=str(work / name),
                audit={},
            )
            s.add(study)
            s.flush()
            out = work / name / "images"
            for i in range(cases):
                path = save_volume(
                    rng.normal(40, 20, (8, 8, 8)).round(),
                    np.diag([1.5] * 3 + [1]),
                    out / f"{i:04d}.nii.gz",
                    "ct",
                )
                vol = Volume(
                    dataset_id=ds.id,
                    case_id=f"{name}-{i:04d}",
                    origin=Origin.PHANTOM,
                    ct_path=str(path),
                    ct_sha256=sha256_file(path),
                    shape=[8, 8, 8],
                    spacing=[1.5] * 3,
                    affine=np.diag([1.5] * 3 + [1]).tolist(),
                    axcodes="RAS",
                )
                s.add(vol)
                s.flush()
                s.add(
                    StudyCase(
                        study_id=study.id,
                        code=new_code(),
                        volume_id=vol.id,
                        arm=Arm.SYNTHETIC if i % 2 else Arm.REAL,
                        organ="liver",
                        method="handcrafted" if i % 2 else None,
                        blinded_path=str(path),
                        blinded_sha256=sha256_file(path),
                        meta={},
                    )
                )
            s.flush()
            for username in names:
                assign(s, study, create_user(s, username, PASSWORD))
            return study.id, names
    finally:
        engine.dispose()


def _submit(engine, uid: int, code: str, value: str, key: str, log: ReaderLog) -> str:
    """One acknowledged submit as the page does it (own session); retried with the same key
    while it raises, at most :data:`MAX_TRIES` times. Returns the final status, or
    ``gave-up`` (the reader was never told; the verifier then expects no answer or counts an
    unacknowledged one)."""
    from db.models import User
    from db.session import session_scope
    from studies.reading import submit_answer

    for _ in range(MAX_TRIES):
        t0 = time.perf_counter()
        try:
            with session_scope(engine) as s:
                res = submit_answer(s, s.get(User, uid), code, value=value, idempotency_key=key)
        except Exception as exc:  # the page shows the message; the reader clicks again
            log.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            time.sleep(0.05)
            continue
        finally:
            log.submit_s.append(time.perf_counter() - t0)
        with _COUNT_LOCK:  # the double-click twin thread shares this log
            log.statuses[res.status] += 1
        return res.status
    return "gave-up"


def _submit_into(out: list[str], *args) -> None:
    out.append(_submit(*args))


def run_reader(
    engine, study_id: int, username: str, config: LoadConfig, seed: int, barrier, login_gate=None
) -> ReaderLog:
    """One simulated reader: log in, wait at ``barrier`` (all readers start together), then
    answer for ``config.duration_s`` (the case in hand is finished)."""
    import random

    from db.models import User
    from db.session import session_scope
    from studies.accounts import authenticate
    from studies.reading import case_volume_bytes, current_case

    rng = random.Random(seed)
    log = ReaderLog(username)
    with login_gate or threading.Lock(), session_scope(engine) as s:
        uid = authenticate(s, username, PASSWORD).id  # argon2: gated, it is memory-hungry
    barrier.wait(timeout=600)
    log.started = time.time()
    deadline = log.started + config.duration_s
    while time.time() < deadline:
        t0 = time.perf_counter()
        with session_scope(engine) as s:
            user = s.get(User, uid)
            view = current_case(s, user, study_id)
            if view is not None:
                case_volume_bytes(s, user, view.code)
        log.view_s.append(time.perf_counter() - t0)
        if view is None:
            log.finished = True
            break
        time.sleep(rng.uniform(*config.think_s))
        values = [v for _, v in view.choices]
        value, key = rng.choice(values), view.idempotency_key
        if rng.random() < config.p_double:
            out: list[str] = []
            twin = threading.Thread(
                target=_submit_into, args=(out, engine, uid, view.code, value, key, log)
            )
            twin.start()
            first = _submit(engine, uid, view.code, value, key, log)
            twin.join()
            statuses = sorted([first, *out])
            if statuses != ["created", "duplicate"]:
                log.anomalies.append(f"{username} {view.code}: double click gave {statuses}")
            if statuses == ["gave-up", "gave-up"]:
                continue
        else:
            status = _submit(engine, uid, view.code, value, key, log)
            if status != "created":
                log.anomalies.append(f"{username} {view.code}: first submit gave {status}")
            if status == "gave-up":
                continue
        log.acked[view.code] = value
        if rng.random() < config.p_retry:
            status = _submit(engine, uid, view.code, value, key, log)
            if status != "duplicate":
                log.anomalies.append(f"{username} {view.code}: retry gave {status}")
        if rng.random() < config.p_other_tab:
            other = next(v for v in values if v != value)
            status = _submit(engine, uid, view.code, other, secrets.token_hex(16), log)
            if status != "rejected":
                log.anomalies.append(f"{username} {view.code}: second tab gave {status}")
    log.ended = time.time()
    return log


def _run_threads(
    engine,
    study_id: int,
    names: list[str],
    config: LoadConfig,
    offset: int = 0,
    barrier=None,
    login_gate=None,
) -> list[ReaderLog]:
    logs: list[ReaderLog | None] = [None] * len(names)
    gate = login_gate or threading.Semaphore(2)
    barrier = barrier or threading.Barrier(len(names))

    def one(i: int) -> None:
        logs[i] = run_reader(
            engine, study_id, names[i], config, config.seed * 100_003 + offset + i, barrier, gate
        )

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [lg for lg in logs if lg is not None]


def _worker(
    config: LoadConfig, study_id: int, names: list[str], offset: int, barrier, gate, results
) -> None:
    """Process entry (spawn): its own engine, its readers as threads; logs back as dicts."""
    from db.session import make_engine

    engine = make_engine(config.db_url)
    try:
        logs = _run_threads(engine, study_id, names, config, offset, barrier, gate)
        # not dataclasses.asdict: it would turn the Counter into a Counter of pairs
        results.put([{**vars(lg), "statuses": dict(lg.statuses)} for lg in logs])
    finally:
        engine.dispose()


def _percentile_ms(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q) * 1000) if values else float("nan")


def run_load(config: LoadConfig, work_dir: str | Path | None = None) -> LoadReport:
    """Set up a study, run ``config.readers`` readers for ``config.duration_s``, verify."""
    from sqlalchemy.engine import make_url

    from db.session import make_engine

    with tempfile.TemporaryDirectory(prefix="answers-load-") as tmp:
        study_id, names = setup_study(
            config.db_url,
            work_dir or tmp,
            readers=config.readers,
            cases=config.cases,
            seed=config.seed,
        )
        # logins (argon2, two at a time) happen before the barrier that starts the clock
        if config.mode == "threads":
            engine = make_engine(config.db_url)
            try:
                logs = _run_threads(engine, study_id, names, config)
            finally:
                engine.dispose()
        elif config.mode == "processes":
            logs = _run_processes(config, study_id, names)
        else:
            raise ValueError(f"mode must be threads or processes, got {config.mode!r}")
        # the measured window: from the common start to the last reader's last ack
        elapsed = max(
            max((lg.ended for lg in logs), default=0.0)
            - min((lg.started for lg in logs), default=0.0),
            1e-9,
        )
        engine = make_engine(config.db_url)
        try:
            checks = verify(engine, study_id, logs)
        finally:
            engine.dispose()
    submit = [x for lg in logs for x in lg.submit_s]
    view = [x for lg in logs for x in lg.view_s]
    statuses = sum((lg.statuses for lg in logs), Counter())
    answers = sum(len(lg.acked) for lg in logs)
    return LoadReport(
        backend=make_url(config.db_url).get_backend_name(),
        mode=config.mode,
        readers=config.readers,
        duration_s=round(elapsed, 1),
        answers=answers,
        answers_per_s=round(answers / elapsed, 1),
        submits=len(submit),
        submit_p50_ms=_percentile_ms(submit, 50),
        submit_p99_ms=_percentile_ms(submit, 99),
        submit_max_ms=max(submit, default=float("nan")) * 1000,
        view_p50_ms=_percentile_ms(view, 50),
        view_p99_ms=_percentile_ms(view, 99),
        statuses=dict(statuses),
        retried_errors=sum(len(lg.errors) for lg in logs),
        anomalies=[a for lg in logs for a in lg.anomalies],
        finished_readers=sum(lg.finished for lg in logs),
        **checks,
    )


def _run_processes(config: LoadConfig, study_id: int, names: list[str]) -> list[ReaderLog]:
    ctx = mp.get_context("spawn")
    n_procs = max(1, min(config.procs or len(names), len(names)))
    chunks = [names[i::n_procs] for i in range(n_procs)]
    gate, results, barrier = ctx.Semaphore(2), ctx.Queue(), ctx.Barrier(len(names))
    procs = [
        ctx.Process(
            target=_worker,
            args=(config, study_id, chunk, k * 1000, barrier, gate, results),
            daemon=True,
        )
        for k, chunk in enumerate(chunks)
    ]
    for p in procs:
        p.start()
    logs = []
    for _ in procs:
        for d in results.get(timeout=config.duration_s + 300):
            d["statuses"] = Counter(d["statuses"])
            logs.append(ReaderLog(**d))
    for p in procs:
        p.join(timeout=30)
    return logs


def verify(engine, study_id: int, logs: list[ReaderLog]) -> dict[str, int]:
    """Compare the database with what the readers were told. Counts (all must be 0):
    ``lost`` acknowledged but no row; ``unacknowledged`` a row nobody was told about;
    ``duplicated`` extra rows for one (reader, case, question); ``wrong_value`` row value !=
    acknowledged value; ``bad_events`` answers without exactly one 'created' event;
    ``bad_progress`` answered assignments != answers; ``bad_resume`` readers whose
    ``current_case`` is not at position answered + 1."""
    from sqlalchemy import func, select

    from core.vocabulary import AnswerEventKind
    from db.models import Answer, AnswerEvent, Assignment, StudyCase, User
    from db.session import session_scope
    from studies.reading import current_case

    acked = {(lg.username, code): value for lg in logs for code, value in lg.acked.items()}
    with session_scope(engine) as s:
        rows = s.execute(
            select(User.username, StudyCase.code, Answer.value, Answer.id)
            .join(User, Answer.reader_id == User.id)
            .join(StudyCase, Answer.case_id == StudyCase.id)
            .where(Answer.study_id == study_id)
        ).all()
        stored = Counter((u, c) for u, c, _, _ in rows)
        values = {(u, c): v for u, c, v, _ in rows}
        created = Counter(
            s.scalars(
                select(AnswerEvent.answer_id).where(
                    AnswerEvent.study_id == study_id, AnswerEvent.event == AnswerEventKind.CREATED
                )
            ).all()
        )
        bad_events = sum(created.get(aid, 0) != 1 for *_, aid in rows) + sum(
            n for aid, n in created.items() if aid not in {r[3] for r in rows}
        )
        answered = dict(
            s.execute(
                select(User.username, func.count(Assignment.id))
                .join(User, Assignment.reader_id == User.id)
                .where(Assignment.study_id == study_id, Assignment.answered_at.is_not(None))
                .group_by(User.username)
            ).all()
        )
        per_reader = Counter(u for u, _ in stored)
        bad_resume = 0
        for lg in logs:
            user = s.scalar(select(User).where(User.username == lg.username))
            view = current_case(s, user, study_id)
            n = per_reader.get(lg.username, 0)
            bad_resume += (view.position != n + 1) if view is not None else (not lg.finished)
    return {
        "lost": sum(k not in stored for k in acked),
        "unacknowledged": sum(k not in acked for k in stored),
        "duplicated": sum(n - 1 for n in stored.values()),
        "wrong_value": sum(values[k] != v for k, v in acked.items() if k in values),
        "bad_events": bad_events,
        "bad_progress": sum(
            answered.get(u, 0) != per_reader.get(u, 0) for u in {lg.username for lg in logs}
        ),
        "bad_resume": bad_resume,
    }


def print_report(report: LoadReport) -> None:
    """A rich table of one run."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"answers load: {report.backend}, {report.mode}, {report.readers} "
        f"readers, {report.duration_s} s"
    )
    table.add_column("measure", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for label, value in [
        ("answers acknowledged", report.answers),
        ("answers/s", report.answers_per_s),
        ("submit calls", report.submits),
        (
            "submit p50/p99/max ms",
            f"{report.submit_p50_ms:.1f} / {report.submit_p99_ms:.1f} / {report.submit_max_ms:.1f}",
        ),
        ("next case p50/p99 ms", f"{report.view_p50_ms:.1f} / {report.view_p99_ms:.1f}"),
        ("outcomes", ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items()))),
        ("errors retried", report.retried_errors),
        ("readers done (all cases)", report.finished_readers),
        ("lost/dup/unacked", f"{report.lost} / {report.duplicated} / {report.unacknowledged}"),
        (
            "value/events/progress/resume",
            f"{report.wrong_value} / {report.bad_events} / "
            f"{report.bad_progress} / {report.bad_resume}",
        ),
        ("verdict", "[green]OK: db == acknowledged[/]" if report.ok else "[red]FAILED[/]"),
    ]:
        table.add_row(label, str(value))
    console = Console()
    console.print(table)
    for line in report.anomalies[:10]:
        console.print(f"[red]anomaly[/] {line}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="database URL (default: fresh SQLite in a temp folder)")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds")
    parser.add_argument("--mode", choices=("threads", "processes"), default="threads")
    parser.add_argument(
        "--procs",
        type=int,
        default=None,
        help="processes mode: number of processes (default one per reader)",
    )
    parser.add_argument("--cases", type=int, default=200)
    parser.add_argument(
        "--think",
        type=float,
        nargs=2,
        default=(0.2, 2.0),
        metavar=("MIN", "MAX"),
        help="think time range in seconds",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="answers-load-db-") as tmp:
        config = LoadConfig(
            db_url=args.db or f"sqlite:///{Path(tmp) / 'load.db'}",
            readers=args.readers,
            duration_s=args.duration,
            mode=args.mode,
            procs=args.procs,
            cases=args.cases,
            think_s=tuple(args.think),
            seed=args.seed,
        )
        report = run_load(config)
    print_report(report)
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""The main job on a fresh machine: phantom cohort -> catalog -> synthetic tumors -> blinded
study with a demo reader. Every step is resumable: re-running skips what is already there.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from core.settings import data_dir, database_url
from core.vocabulary import ORGANS
from synth_backend.registry import registered_methods

log = logging.getLogger(__name__)

EXAMPLES = Path(__file__).resolve().parents[1] / "studies" / "examples"
DEMO_SPEC = EXAMPLES / "demo.yaml"
# the learned methods' shipped weights know the liver only: their cases go into a liver study
DEMO_LEARNED_SPEC = EXAMPLES / "demo-learned.yaml"
DEMO_METHODS = registered_methods()  # every method, every organ (the learned: see below)
DEMO_ORGANS = ORGANS
LEARNED_ORGANS = {"difftumor": ("liver",), "tumorgen": ("liver",)}
LEARNED_VOLUMES = 4  # per learned method: a few CPU seconds each, enough for the study
DEMO_DATASET = "phantom-demo"


@dataclass
class DemoResult:
    db_url: str
    cohort: Path
    synthetic: dict[str, Path] = field(default_factory=dict)
    study: str = ""
    studies: dict[str, str] = field(default_factory=dict)  # name -> export folder
    export_dir: str = ""
    audit: str = ""
    accounts: dict[str, str] = field(default_factory=dict)  # username -> password (new ones)


def run_demo(
    root: Path | None = None,
    db_url: str | None = None,
    *,
    n_cases: int = 12,
    seed: int = 0,
    phantom_config=None,
    progress: bool = True,
) -> DemoResult:
    """Build everything the demo needs under ``root`` (default: the data directory).

    New demo accounts get random passwords, returned in ``accounts`` and kept in
    ``<root>/demo-credentials.txt`` (owner-readable only) for later runs.
    """
    from catalog.batch import BatchConfig, items_from_catalog, run_batch
    from catalog.volumes import import_dataset
    from db.models import Study, User
    from db.session import make_engine, session_scope, upgrade
    from synth_backend.phantom import generate_cohort

    root = Path(root) if root else data_dir()
    url = upgrade(database_url(db_url))
    engine = make_engine(url)
    result = DemoResult(url, root / "phantom")

    # 1. phantom cohort (half the cases carry a phantom lesion: the demo's "real" arm)
    generate_cohort(
        result.cohort,
        n=n_cases,
        seed=seed,
        lesion_fraction=0.5,
        progress=progress,
        **({"config": phantom_config} if phantom_config is not None else {}),
    )
    with session_scope(engine) as session:
        import_dataset(session, "atlas", result.cohort, name=DEMO_DATASET, progress=progress)

    # 2. synthetic tumors: one batch per method and organ, registered in the catalog
    for m, method in enumerate(DEMO_METHODS):
        for organ in LEARNED_ORGANS.get(method, DEMO_ORGANS):
            items = items_from_catalog(organ, dataset=DEMO_DATASET, db_url=url)
            items = items[m:] + items[:m]  # different source volumes for each method
            if method in LEARNED_ORGANS:
                items = items[:LEARNED_VOLUMES]
            out = root / "synthetic" / f"{method}-{organ}"
            run_batch(
                items,
                BatchConfig(
                    method=method,
                    organ=organ,
                    out_dir=out,
                    seed=seed,
                    n=1,
                    device="auto",
                    register=True,
                    db_url=url,
                ),
            )
            result.synthetic[f"{method}/{organ}"] = out

    # 3. the blinded study, its demo reader and a researcher account
    from studies import accounts, admin

    with session_scope(engine) as session:
        for spec, name in ((DEMO_LEARNED_SPEC, "demo-turing-learned"), (DEMO_SPEC, "demo-turing")):
            study = session.scalar(select(Study).where(Study.name == name))
            if study is None:
                study = admin.create_study(
                    session,
                    spec,
                    actor=accounts.OPERATOR,
                    export_root=root / "studies",
                    progress=progress,
                )
            result.studies[study.name] = study.export_dir
        assert study is not None  # the last study of the loop
        result.study, result.export_dir = study.name, study.export_dir
        result.audit = _audit_line(study.audit)
        for username, role in (("demo", "reader"), ("researcher", "researcher")):
            user = session.scalar(select(User).where(User.username == username))
            if user is None or user.password_hash is None:
                password = secrets.token_urlsafe(9)
                if user is None:
                    accounts.create_user(session, username, password, role=role)
                else:
                    accounts.set_password(session, user, password, actor=accounts.OPERATOR)
                result.accounts[username] = password
    if result.accounts:
        _save_credentials(root / "demo-credentials.txt", result.accounts)
    engine.dispose()
    return result


def _save_credentials(path: Path, accounts: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    known = dict(line.split(" / ", 1) for line in path.read_text().splitlines() if " / " in line)
    known.update(accounts)
    path.write_text("".join(f"{user} / {password}\n" for user, password in known.items()))


def _audit_line(audit: dict) -> str:
    from studies.audit import AuditResult

    return AuditResult.from_dict(audit).summary() if audit else "blinding audit: not recorded"

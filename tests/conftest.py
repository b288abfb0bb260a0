"""Shared fixtures: the real CT files beside the project, and a fresh database per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


# The modules that touch the database: `make test` runs them a second time against a real
# PostgreSQL server (`pytest -m postgres`). Folders end with "/"; the rest are single modules.
POSTGRES_MODULES = (
    "db/",
    "studies/",
    "app/",
    "reliability/",
    "synth_backend/test_catalog.py",
    "synth_backend/test_bad_inputs.py",
    "synth_backend/test_dicom_import.py",
)
TESTS_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        try:
            rel = item.path.resolve().relative_to(TESTS_DIR).as_posix()
        except ValueError:
            continue
        if any(rel.startswith(p) if p.endswith("/") else rel == p for p in POSTGRES_MODULES):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real CT files; see its README). Skips when it is absent."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(
            f"real CT test data not found at {SHARED_DATA} (the ../shared/data folder "
            "beside the repository); CI always has it"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory) -> str:
    """One database migrated to head per session (a SQLite file, or a PostgreSQL database);
    every ``db_url`` is a copy of it. Migrating each test's database from scratch cost 0.3-0.5 s
    (SQLite batch migrations rebuild tables), hundreds of times per run."""
    from db.session import upgrade

    pg = os.environ.get("TURINGCT_TEST_POSTGRES_URL")
    if pg:
        url = _fresh_postgres_database(pg, f"template_{os.getpid()}")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db-template') / 'template.db'}"
    upgrade(url)
    return url


@pytest.fixture
def db_url(tmp_path, _migrated_template) -> str:
    """A migrated, empty database: SQLite in tmp_path, or PostgreSQL when
    TURINGCT_TEST_POSTGRES_URL is set (each test then gets its own fresh database), copied from
    the session's migrated template."""
    pg = os.environ.get("TURINGCT_TEST_POSTGRES_URL")
    if pg:
        from sqlalchemy.engine import make_url

        return _fresh_postgres_database(
            pg, tmp_path.name, template=make_url(_migrated_template).database
        )
    import sqlite3

    path = tmp_path / "test.db"
    # the backup API copies a consistent image (the template is in WAL mode)
    with (
        sqlite3.connect(_migrated_template.removeprefix("sqlite:///")) as src,
        sqlite3.connect(path) as dst,
    ):
        src.backup(dst)
    src.close()
    dst.close()
    return f"sqlite:///{path}"


@pytest.fixture
def engine(db_url):
    from db.session import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _fresh_postgres_database(admin_url: str, name: str, template: str | None = None) -> str:
    import re

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    db_name = "t_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:50]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}"'))
        copy = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{db_name}"{copy}'))
    admin.dispose()
    return make_url(admin_url).set(database=db_name).render_as_string(hide_password=False)


ORTHANC = Path("/usr/sbin/Orthanc")
ORTHANC_DICOMWEB = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory):
    """A real Orthanc PACS with its DICOMweb plugin on loopback ports, in a temporary storage
    folder, for the session; yields {"dicomweb": base URL, "dimse": dicom://ORTHANC@host:port}
    (AE TURINGCT may C-GET) and stops the server. Skips when Orthanc is not installed
    (`make test` installs it: scripts/system-deps.sh)."""
    import json
    import socket
    import subprocess
    import time
    import urllib.request

    if not (ORTHANC.is_file() and ORTHANC_DICOMWEB.is_file()):
        pytest.skip(
            "Orthanc + DICOMweb plugin not installed (Debian orthanc, orthanc-dicomweb;"
            " `bash scripts/system-deps.sh` installs them)"
        )
    root = tmp_path_factory.mktemp("orthanc")
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    config = {
        "Name": "turingct-test",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "storage"),
        "HttpPort": ports[0],
        "DicomPort": ports[1],
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [str(ORTHANC_DICOMWEB)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "HttpThreadsCount": 4,
        "DicomAet": "ORTHANC",
        "DicomCheckCalledAet": True,
        "DicomModalities": {
            "turingct": {"AET": "TURINGCT", "Host": "127.0.0.1", "Port": 104, "AllowGet": True}
        },
    }
    (root / "orthanc.json").write_text(json.dumps(config))
    log = open(root / "orthanc.log", "wb")  # noqa: SIM115 - closed after the server stops
    proc = subprocess.Popen(
        [str(ORTHANC), str(root / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{ports[0]}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/dicom-web/studies", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log.close()
                pytest.fail(f"Orthanc did not start; log: {(root / 'orthanc.log').read_text()}")
            time.sleep(0.2)
    yield {"dicomweb": f"{base}/dicom-web", "dimse": f"dicom://ORTHANC@127.0.0.1:{ports[1]}"}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture
def orthanc_url(orthanc) -> str:
    """DICOMweb base URL of the session's Orthanc (see :func:`orthanc`)."""
    return orthanc["dicomweb"]

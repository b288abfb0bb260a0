"""How ``turingct serve`` starts Streamlit: one function that builds the command and environment.

Production settings for a reader study: headless, no usage statistics (no network call the user
did not ask for), no file watching, the developer toolbar hidden and error details kept in the
server log only (a traceback can contain a file path, which could reveal a case's arm), no
external help links in error boxes, the agent API and static file serving off, uploads capped
(a study spec is a few kB), XSRF protection and CORS on. What Streamlit cannot turn off is
guarded in ``app/asgi.py`` (the served script): ``/_stcore/metrics`` answers 404 and the
session-start message loses the install path; docs/operations.md, "Exposing the app".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from core.errors import InputError
from core.settings import ENV_DATABASE_URL

MAIN_SCRIPT = Path(__file__).resolve().parent / "main.py"
# What `streamlit run` starts: main.py as an st.App behind a guard for /_stcore/metrics
SERVED_SCRIPT = Path(__file__).resolve().parent / "asgi.py"
DEFAULT_PORT = 8501
MAX_UPLOAD_MB = 10  # the only upload is a study spec (studies.spec.MAX_SPEC_BYTES = 256 KiB)


def streamlit_command(
    port: int = DEFAULT_PORT,
    address: str = "localhost",
    database_url: str | None = None,
    base_env: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """(argv, env) that run the app on ``address:port`` against ``database_url``.

    ``database_url`` reaches the app through ``$TURINGCT_DATABASE_URL`` (never on the command
    line, where other users could read a password in ``ps``). ``port`` must be 1-65535
    (else :class:`~core.errors.InputError`, a ValueError).
    """
    if not 0 < int(port) < 65536:
        raise InputError("--port", f"must be in 1-65535, got {port}", "pick a free port")
    env = dict(os.environ if base_env is None else base_env)
    if database_url:
        env[ENV_DATABASE_URL] = database_url
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    argv = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(SERVED_SCRIPT),
        "--server.port",
        str(int(port)),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--client.showErrorDetails",
        "none",
        "--global.developmentMode",
        "false",
        "--client.showErrorLinks",
        "false",
        "--server.enableAgentApi",
        "false",
        "--server.enableStaticServing",
        "false",
        "--server.enableXsrfProtection",
        "true",
        "--server.enableCORS",
        "true",
        "--server.maxUploadSize",
        str(MAX_UPLOAD_MB),
        "--theme.base",
        "dark",  # dark surroundings, as on a reading-room monitor
    ]
    return argv, env

"""A reader as a separate process, for the kill-and-restart tests.

``python -m tests.reliability.reader_script URL STUDY_ID USERNAME PASSWORD SEED``: logs in
with ``studies.accounts.authenticate``, then answers case after case through the service
functions the reader page calls (``current_case``, ``case_volume_bytes``, ``submit_answer``),
each in its own short session. After every acknowledged answer it prints
``ACK <position> <code> <value> <status>`` and flushes, so the parent knows exactly what the
reader was told before it kills the process. Prints ``DONE`` when no case is left. The password
comes on the command line only because this is a throw-away test account.
"""

from __future__ import annotations

import random
import sys
import time


def main(argv: list[str]) -> int:
    from db.models import User
    from db.session import make_engine, session_scope
    from studies.accounts import authenticate
    from studies.reading import case_volume_bytes, current_case, submit_answer

    url, study_id, username, password, seed = argv
    rng = random.Random(int(seed))
    engine = make_engine(url)
    with session_scope(engine) as s:
        uid = authenticate(s, username, password).id
    print("READY", flush=True)
    while True:
        with session_scope(engine) as s:
            user = s.get(User, uid)
            view = current_case(s, user, int(study_id))
            if view is not None:
                case_volume_bytes(s, user, view.code)
        if view is None:
            print("DONE", flush=True)
            return 0
        time.sleep(rng.uniform(0.0, 0.03))
        value = rng.choice([v for _, v in view.choices])
        with session_scope(engine) as s:
            res = submit_answer(
                s, s.get(User, uid), view.code, value=value, idempotency_key=view.idempotency_key
            )
        print(f"ACK {view.position} {view.code} {value} {res.status}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

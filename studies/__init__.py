"""Blinded reader studies: specs, case selection, blinded export, audit, accounts and answers.

Modules, one concept each:

- :mod:`studies.spec` — the study spec YAML (validated by hand, one-line errors).
- :mod:`studies.selection` — which catalog volumes enter the real and synthetic arms.
- :mod:`studies.blinding` — identical-looking blinded NIfTI copies under opaque codes.
- :mod:`studies.audit` — can a classifier tell the arms apart without looking at the tumor?
- :mod:`studies.assignment` — per-reader seeded, stable case orders.
- :mod:`studies.accounts` — users, passwords (argon2), invites, roles.
- :mod:`studies.reading` — what the reader pages call (cases, volumes, answers).
- :mod:`studies.admin` — what researchers call (create/list/show/close, progress, CSVs).

Every service function takes the acting user and checks its role itself; page code only calls.
"""

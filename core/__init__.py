"""The ground floor: what every package of turingct needs and none of them owns.

Nothing here imports anything of the project (tests/test_layers.py checks it): the error types
every one-line message uses, the settings (data dir, database URL, code version), the
vocabulary (organs, size classes, study designs, questions, answers) and shared type aliases.
"""

"""The Streamlit app: reader viewer and voting, researcher pages, dashboards.

Run it with ``turingct serve``. ``app/main.py`` is the entry script: it only builds
``st.navigation`` from the logged-in user's role; pages live in ``app/pages_/`` and call service
functions in :mod:`studies`, :mod:`evaluation` and :mod:`db` (no SQL, no formulas in pages).
"""

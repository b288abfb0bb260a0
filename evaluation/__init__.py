"""Evaluation layer: reader statistics, agreement, FID/FRD, DSC/NSD, radiomics, figures, reports.

Pure functions over arrays and tables (no Streamlit, no database imports at module level); the
CLI (`turingct evaluate ...`) and the app call them. Every table is written with a conventions
sidecar (see :mod:`evaluation.tables`).
"""

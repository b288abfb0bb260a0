"""The catalog: every database write about volumes, synthetic volumes and synthesis jobs.

``volumes`` registers datasets (validate first, one transaction) and answers catalog queries;
``batch`` is the database side of a synthesis batch (the items from the catalog and the
recorder that writes the SynthesisJob row and registers each output); ``jobs`` reads the job
rows back for the app. ``synth_backend`` below it only reads and writes files.
"""

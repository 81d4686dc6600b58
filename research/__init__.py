"""The research harness: simulated world pools, baselines, evaluation protocols, the report and
the shipped-model build. It imports the package and is not part of it (nothing installed
imports it); run its modules from the repository root, e.g. `python -m research.report`.
"""

"""Canonical log schema, ingestion, per-request signals and per-account features."""

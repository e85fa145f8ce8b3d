"""Prefect flows: thin orchestration over annex.pipeline."""

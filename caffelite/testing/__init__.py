"""Helpers for tests: numeric gradient checking and single-layer harnesses."""

"""Shared pytest fixtures for the caffelite test suite."""

import pytest

from fixture_paths import find_fixtures_dir


@pytest.fixture(scope="session")
def fixtures_dir():
    """pathlib.Path of the Caffe reference fixtures (skips if absent)."""
    path = find_fixtures_dir()
    if path is None:
        pytest.skip("Caffe reference fixtures not found "
                    "(tests/fixtures_shared or ../shared/fixtures)")
    return path

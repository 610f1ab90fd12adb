"""Shared pytest fixtures for the caffelite test suite."""

import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def find_fixtures_dir():
    """Locate the Caffe reference fixtures.

    A copy shipped with the repo (``tests/fixtures_shared``) wins; otherwise
    the shared checkout next to the repo (``../shared/fixtures``) is used.
    Returns None when neither exists.
    """
    for cand in (REPO_ROOT / "tests" / "fixtures_shared",
                 REPO_ROOT.parent / "shared" / "fixtures"):
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def fixtures_dir():
    """pathlib.Path of the Caffe reference fixtures (skips if absent)."""
    path = find_fixtures_dir()
    if path is None:
        pytest.skip("Caffe reference fixtures not found "
                    "(tests/fixtures_shared or ../shared/fixtures)")
    return path

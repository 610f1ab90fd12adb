"""Where the Caffe reference fixtures are: shipped in the repo, or ../shared beside it."""
import pathlib

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

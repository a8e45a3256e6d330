"""Where the authors' code (elliottwu/unsup3d at AUTHOR_COMMIT) is, for `impl: author` cells.

Torch-free: the harness asks it too, to skip an author cell that has no code to run
(harness/feasibility.py) instead of letting it fail. Looked up in this order:

1. the cell's `author_code_dir` key;
2. $REPRO_AUTHOR_CODE_DIR (the CUDA images set it to their own checkout, /opt/unsup3d);
3. <project>/third_party/unsup3d, where scripts/setup.sh fetches the pinned commit (git-ignored);
4. <project>/../shared/third_party/unsup3d, the read-only snapshot beside this project's checkouts.

A path given by 1 or 2 must hold the code; 3 and 4 are taken when present.
Python 3.6 compatible.
"""
import os

__all__ = ["AUTHOR_COMMIT", "AUTHOR_REPO", "AUTHOR_CODE_ENV", "FETCHED_DIR", "SHARED_DIR", "find_author_code"]

AUTHOR_COMMIT = "dc961410d61684561f19525c2f7e9ee6f4dacb91"  # the pinned elliottwu/unsup3d commit
AUTHOR_REPO = "https://github.com/elliottwu/unsup3d.git"
AUTHOR_CODE_ENV = "REPRO_AUTHOR_CODE_DIR"

_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FETCHED_DIR = os.path.join(_PROJECT_ROOT, "third_party", "unsup3d")
SHARED_DIR = os.path.join(os.path.dirname(_PROJECT_ROOT), "shared", "third_party", "unsup3d")


def _holds_code(path):
    return os.path.isfile(os.path.join(path, "unsup3d", "model.py"))


def find_author_code(configured=None, environ=None):
    """(checkout path, None), or (None, why) in one line naming where it looked.

    Args:
        configured: the cell's author_code_dir (None: not set).
        environ: the environment to read $REPRO_AUTHOR_CODE_DIR from (default os.environ).
    """
    environ = os.environ if environ is None else environ
    for key, value in (("author_code_dir", configured), (AUTHOR_CODE_ENV, environ.get(AUTHOR_CODE_ENV))):
        if value:
            path = os.path.abspath(os.path.expanduser(value))
            if _holds_code(path):
                return path, None
            return None, "%s: no unsup3d/model.py under %s (expected a checkout of elliottwu/unsup3d at %s)" % (
                key, path, AUTHOR_COMMIT)
    for path in (FETCHED_DIR, SHARED_DIR):
        if _holds_code(path):
            return path, None
    return None, ("the authors' code is not here: no unsup3d/model.py under %s (scripts/setup.sh fetches "
                  "it there) or %s; or set author_code_dir / $%s" % (FETCHED_DIR, SHARED_DIR, AUTHOR_CODE_ENV))

"""Is a finished cell stale: does the code that would run it now differ from the code it ran?

A cell's id hashes what it computes (axes, config, stack: harness/cells.py); the code
is not in it, so a code change keeps the cell's folder and marks its result stale
instead. The trainer records in env.json a digest of each file it imported (model/,
and the authors' code for `impl: author`; model/codedigest.py says what a digest
covers: comments and docstrings do not count) and the image it ran in. Here those
files are digested again as they are now, and the image the stack would use is
looked up; every difference is named. `repro run` keeps stale cells unless asked
(`--rerun-stale`, or a selection), `repro status` and the report mark them.
"""
import dataclasses
import os
from pathlib import Path
from typing import Callable, Dict, Mapping, Optional, Tuple

from harness import PROJECT_ROOT
from harness.host import built_images
from harness.images import image_name
from harness.states import CellState
from model.codedigest import AUTHOR_PREFIX, file_digest

__all__ = ["Staleness", "CodeNow", "CHECKED_STATES", "image_ids"]

CHECKED_STATES = (CellState.DONE, CellState.DIVERGED)   # the states that hold a result
NO_RECORD = "env.json records no code digest (ran before repro recorded one)"
NO_ENV = "no readable env.json: the code it ran is unknown"


@dataclasses.dataclass(frozen=True)
class Staleness:
    """What differs between the code a cell ran and the code that would run it now."""
    changed: Tuple[str, ...] = ()   # file keys (model/step.py, author:unsup3d/model.py) or "image <tag>"
    note: str = ""                  # why the cell is stale beyond changed files ("" when none)

    @property
    def stale(self) -> bool:
        return bool(self.changed or self.note)

    def reason(self) -> str:
        """One line: "model/step.py changed", or why nothing could be compared ("" when fresh)."""
        parts = ["%s changed" % ", ".join(self.changed)] if self.changed else []
        return "; ".join(parts + ([self.note] if self.note else []))


def image_ids() -> Optional[Dict[str, str]]:
    """Image name (repro-unsup3d:TAG) -> id of the stack images built here; None when docker cannot say."""
    built = built_images()
    return None if built is None else {image_name(tag): image for tag, image in built.items()}


class CodeNow:
    """The code as it is now: each file digested once, the built images looked up once (lazily)."""

    def __init__(self, project_root: Path = PROJECT_ROOT,
                 images: Optional[Callable[[], Optional[Mapping[str, str]]]] = image_ids):
        self.project_root = Path(project_root)
        self._images = images          # () -> {image name: image id}, None when the engine cannot say
        self._image_ids: Optional[Mapping[str, str]] = None
        self._digests: Dict[str, Optional[str]] = {}

    def check(self, env: Optional[dict]) -> Staleness:
        """Compare a cell's env.json with the code (and image) as they are now."""
        if env is None:
            return Staleness(note=NO_ENV)
        code = env.get("code")
        if not isinstance(code, dict):
            return Staleness(note=NO_RECORD)
        changed = [key for key, recorded in sorted(code.items())
                   if self.digest(key, env.get("author_code_dir")) != recorded]
        mixed = env.get("code_changed_mid_run") or []
        note = ("resumed with other code: %s changed mid-run" % ", ".join(mixed)) if mixed else ""
        image = self._image_changed(env.get("image"), env.get("image_digest"))
        return Staleness(tuple(changed + ([image] if image else [])), note)

    def digest(self, key: str, author_dir: Optional[str] = None) -> Optional[str]:
        """The digest of a recorded file key as the file is now (None: missing or unreadable)."""
        if key.startswith(AUTHOR_PREFIX):
            path = os.path.join(author_dir or "", key[len(AUTHOR_PREFIX):]) if author_dir else ""
        else:
            path = str(self.project_root / key)
        if path not in self._digests:
            self._digests[path] = file_digest(path) if path else None
        return self._digests[path]

    def _image_changed(self, name: Optional[str], recorded: Optional[str]) -> str:
        """"image NAME" when the image of that name here is not the one the cell ran in ("" if same or unknown)."""
        if not name or not recorded or self._images is None:
            return ""
        if self._image_ids is None:
            self._image_ids = self._images() or {}
        now = self._image_ids.get(name)
        return "image %s" % name if now and now != recorded else ""

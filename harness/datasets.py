"""`repro data`: the original's datasets, fetched, verified and unpacked where the loaders read them.

An archive (downloaded from the URL of the original's download script, or given with
--from) is checked against the size and sha256 recorded here, unpacked into a temporary
folder beside the target, checked against the layout model.data reads (model.layouts),
and only then renamed into place: a truncated or corrupt archive, or one holding the
wrong layout, is refused in one line and leaves nothing behind.
"""
import dataclasses
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Dict, Optional

from model.layouts import SPLITS, DataError, check_layout

__all__ = ["Archive", "ARCHIVES", "DatasetError", "install"]

_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Archive:
    """One dataset the original trains on, and where its archive comes from.

    size and sha256 are recorded after a download whose content was checked; None means
    not recorded yet: such a download is unpacked unverified, and its size and sha256
    are printed so they can be recorded (or checked against `--sha256`).
    """
    name: str
    layout: str                  # model.layouts: 'synface' (image + depth) | 'celeba' (images)
    url: Optional[str]           # None: no published archive (see `source`)
    size: Optional[int]          # bytes
    sha256: Optional[str]
    source: str                  # where the URL is from, or how to make the archive


ARCHIVES: Dict[str, Archive] = {a.name: a for a in (
    Archive("synface", "synface", "https://www.robots.ox.ac.uk/~vgg/research/unsup3d/data/synface.zip",
            size=None, sha256=None,  # not downloaded from this project's machines yet (no internet)
            source="the original's data/download_synface.sh (elliottwu/unsup3d @ dc96141)"),
    Archive("celeba", "celeba", None, size=None, sha256=None,
            source="the original publishes no archive: download img_celeba.7z from "
                   "http://mmlab.ie.cuhk.edu.hk/projects/CelebA.html, run the original's data/celeba_crop.py, "
                   "pack its celeba_cropped/ folder (zip or tar) and pass it with --from"),
)}


class DatasetError(ValueError):
    """A refused archive or target; str() is one line saying what and where."""


def install(name: str, dest: Path, archive_file: Optional[Path] = None, sha256: Optional[str] = None,
            log: Callable[[str], None] = print) -> Path:
    """Put dataset `name` at dest/name (train/ val/ test/ in its layout); returns that folder.

    Args:
        name: a key of ARCHIVES.
        dest: the folder that receives dest/name (created if missing).
        archive_file: an archive already on disk (else the recorded URL is downloaded).
        sha256: the expected sha256 where none is recorded.
    Raises:
        DatasetError: unknown name, target present, download failed, archive truncated,
            corrupt, unsafe or of the wrong layout. Nothing is left half-written.
    """
    archive = _archive(name)
    target = Path(dest) / archive.name
    if target.exists():
        raise DatasetError("%s already exists; remove it first to unpack %s again" % (target, archive.name))
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".%s-" % archive.name, dir=target.parent) as work:
            path = Path(archive_file) if archive_file else _download(archive, Path(work) / "download", log)
            unverified = _verify(archive, path, sha256)
            root = _unpack(path, Path(work) / "unpacked")
            counts = _check(root, archive, path)
            os.rename(root, target)  # same filesystem (work is beside target): all or nothing
    except DatasetError:
        for folder in made:  # the folders made for it, innermost first
            folder.rmdir()
        raise
    if unverified:
        log(unverified)
    log("%s: %s -> %s (dataset: %s, data_dir: %s)" % (
        archive.name, ", ".join("%s %d" % (s, counts[s]) for s in SPLITS), target, archive.name, target))
    return target


def _check(root: Path, archive: Archive, path: Path) -> Dict[str, int]:
    """Images per split of the unpacked folder, in the layout the loaders read."""
    try:
        return check_layout(str(root), archive.layout)
    except DataError as e:
        raise DatasetError("%s: not the %s layout: %s" % (path, archive.name, str(e).replace("data_dir: ", "")))


def _archive(name: str) -> Archive:
    if name not in ARCHIVES:
        raise DatasetError("unknown dataset %r; known: %s" % (name, ", ".join(ARCHIVES)))
    return ARCHIVES[name]


def _download(archive: Archive, path: Path, log) -> Path:
    if archive.url is None:
        raise DatasetError("%s: %s" % (archive.name, archive.source))
    log("%s: downloading %s (%s)" % (archive.name, archive.url, archive.source))
    try:
        with urllib.request.urlopen(archive.url, timeout=60) as response, open(path, "wb") as out:
            shutil.copyfileobj(response, out, _CHUNK)
    except (OSError, ValueError) as e:  # URLError is an OSError
        raise DatasetError("%s: download of %s failed (%s); with the archive on disk, pass --from FILE"
                           % (archive.name, archive.url, getattr(e, "reason", e)))
    return path


def _verify(archive: Archive, path: Path, sha256: Optional[str]) -> Optional[str]:
    """Size and sha256 against the recorded (or given) values; a note to print when none is known."""
    if not path.is_file():
        raise DatasetError("--from %s: no such file" % path)
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        raise DatasetError("%s: %d bytes, the %s archive has %d: truncated or another file"
                           % (path, size, archive.name, archive.size))
    digest = _sha256(path)
    expected = (sha256 or archive.sha256 or "").lower()
    if expected and digest != expected:
        raise DatasetError("%s: sha256 %s, expected %s: corrupt or another file" % (path, digest, expected))
    if not expected:
        return ("%s: UNVERIFIED: no sha256 recorded (harness/datasets.py) or given (--sha256); this archive "
                "has %d bytes, sha256 %s" % (archive.name, size, digest))
    return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack(path: Path, out: Path) -> Path:
    """Extract a zip or tar(.gz/.bz2/.xz) into `out`; returns the folder holding train/."""
    out.mkdir()
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                _check_names(path, z.namelist())
                z.extractall(out)
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as t:
                members = t.getmembers()
                _check_names(path, [m.name for m in members])
                t.extractall(out, members=[m for m in members if m.isfile() or m.isdir()])
        else:
            raise DatasetError("%s: neither a zip nor a tar archive (truncated or another file)" % path)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise DatasetError("%s: a corrupt or truncated archive (%s)" % (path, str(e).splitlines()[0] or
                                                                      e.__class__.__name__))
    return _layout_root(out)


def _check_names(path: Path, names) -> None:
    for name in names:
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts:
            raise DatasetError("%s: member %r would unpack outside its folder; refused" % (path, name))


def _layout_root(out: Path) -> Path:
    """The unpacked folder holding the splits: the archive's top level or its one folder."""
    entries = [p for p in out.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and not (out / SPLITS[0]).is_dir():
        return entries[0]
    return out

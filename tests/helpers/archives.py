"""Archives in the original's dataset layouts, made here from the built-in faces (real image files).

synface's release holds 256 px PNGs with the face in the centre 170 px (the original's crop);
celeba_crop.py writes 128 px crops with no depth. The built-in faces are scaled into those
frames, so `repro data --from` and the loaders see what the real archives hold.
"""
import tarfile
import zipfile
from pathlib import Path

from PIL import Image

from model.builtin_data import ensure_builtin
from model.config import resolve

__all__ = ["SYNFACE_SIZE", "SYNFACE_FACE", "synface_folder", "celeba_folder", "zip_folder", "tar_folder"]

SYNFACE_SIZE, SYNFACE_FACE, CELEBA_SIZE = 256, 170, 128
COUNTS = {"train": 5, "val": 2, "test": 3}


def _builtin(work: Path) -> Path:
    cfg = resolve({"preset": "tiny", "image_size": 64, "builtin_num_train": COUNTS["train"],
                   "builtin_num_val": COUNTS["val"], "builtin_num_test": COUNTS["test"]})
    return Path(ensure_builtin(cfg, str(work / "builtin-cache"), log=lambda _: None))


def _framed(src: Path, size: int, face: int) -> Image.Image:
    """The picture scaled to face x face in the centre of a black size x size frame."""
    canvas = Image.new("RGB", (size, size))
    offset = (size - face) // 2
    with Image.open(src) as img:
        canvas.paste(img.convert("RGB").resize((face, face), Image.BILINEAR), (offset, offset))
    return canvas


def synface_folder(work: Path) -> Path:
    """work/synface/<split>/{image,depth}/*: 256 px, the face in the centre 170."""
    src, out = _builtin(work), work / "synface"
    for split in COUNTS:
        for sub in ("image", "depth"):
            (out / split / sub).mkdir(parents=True)
            for path in sorted((src / split / sub).glob("*.png")):
                _framed(path, SYNFACE_SIZE, SYNFACE_FACE).save(out / split / sub / path.name)
    return out


def celeba_folder(work: Path) -> Path:
    """work/celeba_cropped/<split>/*.jpg: 128 px face crops, no depth (celeba_crop.py's output)."""
    src, out = _builtin(work), work / "celeba_cropped"
    for split in COUNTS:
        (out / split).mkdir(parents=True)
        for path in sorted((src / split / "image").glob("*.png")):
            _framed(path, CELEBA_SIZE, CELEBA_SIZE).save(out / split / (path.stem + ".jpg"), quality=95)
    return out


def zip_folder(folder: Path, archive: Path) -> Path:
    """A zip holding folder/ under its own name, as `unzip synface.zip` expects."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(folder.rglob("*")):
            z.write(path, path.relative_to(folder.parent).as_posix())
    return archive


def tar_folder(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as t:
        t.add(folder, arcname=folder.name)
    return archive

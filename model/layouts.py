"""The authors' published data layouts on disk: which files a split holds (no torch).

Two layouts, found as the original's dataloaders.py finds them:

* ``synface`` (also what the builtin generator writes): ``<split>/image/*.png``
  paired with ``<split>/depth/*.png``; a depth file's name is the image file's
  name with 'image' replaced by 'depth' (their paired_data_filename_diff).
* ``celeba``: every image file found walking ``<split>/`` (no depth).

model.data reads these files into tensors; `repro data` (harness/datasets.py) checks
an unpacked archive with `check_layout` before it puts it in place. Python 3.6 compatible.
"""
import os

__all__ = ["DataError", "IMG_EXTENSIONS", "SPLITS", "LAYOUT_HINTS", "has_depth", "layout_of",
           "list_celeba", "list_synface", "check_layout"]

# The original's list, including its 'webp' without a dot (matches '*webp').
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', 'webp')
SPLITS = ("train", "val", "test")
_PAIRED_DIRS = ("image", "depth")         # their paired_data_dir_names
_PAIRED_NAME_DIFF = ("image", "depth")    # their paired_data_filename_diff
LAYOUT_HINTS = {
    "synface": "the synface layout: {split}/image/*.png + {split}/depth/*.png",
    "celeba": "the celeba layout: {split}/ holding image files (%s)" % " ".join(IMG_EXTENSIONS),
}


def has_depth(dataset):
    """Does `dataset` ('builtin', 'synface', 'celeba') come with ground-truth depth? celeba does not."""
    return dataset != "celeba"


class DataError(ValueError):
    """Missing or malformed data; str() is one line naming the path and what is expected."""


def _fail(path, problem, layout, split):
    hint = LAYOUT_HINTS[layout].format(split=split)
    raise DataError("data_dir: %s %s (expected %s)" % (path, problem, hint))


# ---------------------------------------------------------------------------
# file discovery (same walk and sort order as the original)

def _is_image_file(filename):
    return filename.lower().endswith(IMG_EXTENSIONS)


def _walk_images(folder):
    """Image files under `folder`, in the original's order (sorted walk, sorted names)."""
    paths = []
    for root, _, fnames in sorted(os.walk(folder)):
        for fname in sorted(fnames):
            if _is_image_file(fname):
                paths.append(os.path.join(root, fname))
    return paths


def _require_dir(path, layout, split):
    if not os.path.isdir(path):
        _fail(path, "is not a folder", layout, split)


def list_celeba(split_dir, split):
    _require_dir(split_dir, "celeba", split)
    paths = _walk_images(split_dir)
    if not paths:
        _fail(split_dir, "has no images", "celeba", split)
    return paths


def _depth_path_for(image_path, image_dir, depth_dir):
    """The original's pairing: same sub-folder under depth/, 'image' -> 'depth' in the name."""
    root, fname = os.path.split(image_path)
    depth_root = root.replace(image_dir, depth_dir, 1)
    return os.path.join(depth_root, fname.replace(*_PAIRED_NAME_DIFF))


def list_synface(split_dir, split):
    """(image_path, depth_path) pairs; every image must have its depth file.

    The original silently drops images without depth; a partial download would
    then shrink the test set unnoticed, so a missing depth file is an error here.
    """
    _require_dir(split_dir, "synface", split)
    image_dir, depth_dir = (os.path.join(split_dir, name) for name in _PAIRED_DIRS)
    _require_dir(image_dir, "synface", split)
    _require_dir(depth_dir, "synface", split)
    image_paths = _walk_images(image_dir)
    if not image_paths:
        _fail(image_dir, "has no images", "synface", split)
    pairs = [(path, _depth_path_for(path, image_dir, depth_dir)) for path in image_paths]
    missing = [depth for _, depth in pairs if not os.path.isfile(depth)]
    if missing:
        _fail(missing[0], "is missing (%d of %d depth files missing)" % (len(missing), len(pairs)),
              "synface", split)
    return pairs


def layout_of(dataset):
    """The layout a dataset ('builtin', 'synface', 'celeba') is stored in."""
    return "synface" if has_depth(dataset) else "celeba"


def check_layout(data_dir, layout, splits=SPLITS):
    """{split: number of images} of data_dir in `layout`; DataError names what is missing."""
    lister = list_synface if layout == "synface" else list_celeba
    return dict((split, len(lister(os.path.join(data_dir, split), split))) for split in splits)

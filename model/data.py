"""Datasets and loaders for the authors' published layouts (model.layouts), read with PIL only.

Transforms match theirs (torchvision on PIL): optional centre crop, bilinear
resize to image_size, horizontal flip on train only (the same flip for image
and depth), then a float tensor in [0, 1], (C, H, W).

Unlike theirs, order and flips never come from global RNG state: the
``SeededSampler`` draws both from (seed, epoch), in the main process, and
yields ``(index, flip)`` pairs. A resumed run calls ``start_epoch(loader,
epoch, skip_batches)`` and sees exactly the batches the interrupted run would
have seen, whatever num_workers is. Python 3.6 / PyTorch 1.2 compatible.
"""
import os

import numpy as np
import torch
import torch.utils.data
from PIL import Image

from .layouts import (DataError, IMG_EXTENSIONS, LAYOUT_HINTS, SPLITS, has_depth, layout_of, list_celeba,
                      list_synface)

__all__ = [
    "DataError", "IMG_EXTENSIONS", "SPLITS", "ImageDataset", "PairedDataset", "SeededSampler",
    "make_dataset", "make_loader", "make_loaders", "start_epoch", "load_image",
]

# ---------------------------------------------------------------------------
# transforms (torchvision's CenterCrop / resize / hflip / to_tensor on PIL)

def load_image(path):
    """Open an image file as RGB (depth maps too, like the original)."""
    with Image.open(path) as img:
        return img.convert("RGB")


def _crop(img, crop):
    """int: centre crop as torchvision's CenterCrop; (y0, x0, h, w): a fixed box."""
    if isinstance(crop, int):
        width, height = img.size
        top = int(round((height - crop) / 2.0))
        left = int(round((width - crop) / 2.0))
        box = (left, top, left + crop, top + crop)
    else:
        y0, x0, h, w = crop
        box = (x0, y0, x0 + w, y0 + h)
    return img.crop(box)


def _to_tensor(img):
    """PIL RGB -> float tensor in [0, 1], (3, H, W)."""
    array = np.array(img, dtype=np.uint8)  # (H, W, 3), a writable copy
    return torch.from_numpy(array).permute(2, 0, 1).float().div(255.0)


def _transform(img, image_size, crop, hflip):
    if crop is not None:
        img = _crop(img, crop)
    img = img.resize((image_size, image_size), Image.BILINEAR)
    if hflip:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return _to_tensor(img)


def _check_crop(crop):
    ok = crop is None or isinstance(crop, int) or (
        isinstance(crop, (list, tuple)) and len(crop) == 4 and all(isinstance(v, int) for v in crop))
    if not ok:
        raise DataError("crop: expected an int (centre crop) or 4 ints (y0, x0, h, w), got %r" % (crop,))


def _split_item(item):
    """Accept a plain index or the sampler's (index, flip) pair."""
    if isinstance(item, (tuple, list)):
        return int(item[0]), bool(item[1])
    return int(item), False


# ---------------------------------------------------------------------------
# datasets

class _SplitDataset(torch.utils.data.Dataset):
    """One split folder's items, resized (and cropped) to image_size; `_list` finds the paths."""

    def __init__(self, split_dir, image_size=64, crop=None, split="train"):
        _check_crop(crop)
        self.paths = self._list(split_dir, split)
        self.image_size = image_size
        self.crop = crop

    def __len__(self):
        return len(self.paths)


class ImageDataset(_SplitDataset):
    """celeba layout: images only; an item is a float tensor (3, S, S)."""
    _list = staticmethod(list_celeba)

    def __getitem__(self, item):
        index, hflip = _split_item(item)
        return _transform(load_image(self.paths[index]), self.image_size, self.crop, hflip)


class PairedDataset(_SplitDataset):
    """synface layout: an item is (image (3, S, S), depth image (3, S, S)), flipped together."""
    _list = staticmethod(list_synface)

    def __getitem__(self, item):
        index, hflip = _split_item(item)
        image_path, depth_path = self.paths[index]
        image = _transform(load_image(image_path), self.image_size, self.crop, hflip)
        depth = _transform(load_image(depth_path), self.image_size, self.crop, hflip)
        return image, depth


def make_dataset(layout, split_dir, image_size=64, crop=None, split="train"):
    """A dataset for `layout` ('synface', 'builtin' (written as synface) or 'celeba')."""
    if not has_depth(layout):
        return ImageDataset(split_dir, image_size, crop, split)
    return PairedDataset(split_dir, image_size, crop, split)


# ---------------------------------------------------------------------------
# deterministic order and flips

class SeededSampler(torch.utils.data.Sampler):
    """Yields (index, flip) pairs; order and flips are functions of (seed, epoch) only.

    Drawing them here, in the main process, keeps them independent of worker
    count and of any global RNG the model touches. Call `set_epoch` before each
    epoch; `skip` drops the first samples of that epoch when resuming.
    """

    def __init__(self, num_items, seed=0, shuffle=False, flip=False):
        self.num_items = num_items
        self.seed = seed
        self.shuffle = shuffle
        self.flip = flip
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch, skip=0):
        """Select the epoch to draw; skip its first `skip` samples (resume mid-epoch)."""
        self.epoch = int(epoch)
        self.skip = max(0, min(int(skip), self.num_items))

    def _rng(self, stream):
        # A seed *sequence*: (seed, epoch) pairs never collide, unlike seed + epoch.
        return np.random.RandomState([self.seed % 2 ** 32, self.epoch % 2 ** 32, stream])

    def order(self):
        """Dataset indices of the whole epoch, before skipping."""
        if self.shuffle:
            return self._rng(0).permutation(self.num_items)
        return np.arange(self.num_items)

    def flips(self):
        """flips()[index] says whether item `index` is flipped this epoch."""
        if self.flip:
            return self._rng(1).rand(self.num_items) > 0.5
        return np.zeros(self.num_items, dtype=bool)

    def __iter__(self):
        flips = self.flips()
        for index in self.order()[self.skip:]:
            yield int(index), bool(flips[index])

    def __len__(self):
        return self.num_items - self.skip


def start_epoch(loader, epoch, skip_batches=0):
    """Prepare `loader` for `epoch`, skipping its first `skip_batches` batches (resume)."""
    loader.sampler.set_epoch(epoch, skip=skip_batches * loader.batch_size)


# ---------------------------------------------------------------------------
# loaders

def make_loader(dataset, batch_size, num_workers=0, seed=0, train=False):
    """train: shuffled and flipped; otherwise in file order, unflipped. Every image, every
    epoch: the last batch may be partial (the original's loaders keep it: no drop_last)."""
    sampler = SeededSampler(len(dataset), seed=seed, shuffle=train, flip=train)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
        pin_memory=torch.cuda.is_available())


def make_loaders(cfg, data_dir, splits=SPLITS):
    """Loaders for `<data_dir>/<split>` per split: dict(train=..., val=..., test=...).

    Args:
        cfg: resolved cell config (dataset, image_size, crop, batch_size, num_workers, seed).
        data_dir: folder holding train/ val/ test/ in the cfg['dataset'] layout.
        splits: which splits to build (evaluation only needs 'test').
    Returns:
        dict split -> DataLoader; batches are (image, depth) for synface/builtin, image for celeba.
    Raises:
        DataError: a folder is missing or empty, or an image has no depth file.
    """
    layout = layout_of(cfg["dataset"])
    if not os.path.isdir(data_dir):
        raise DataError("data_dir: %s is not a folder (expected train/ val/ test/ in %s)"
                        % (data_dir, LAYOUT_HINTS[layout].format(split="<split>")))
    loaders = {}
    for split in splits:
        dataset = make_dataset(cfg["dataset"], os.path.join(data_dir, split),
                               cfg["image_size"], cfg.get("crop"), split)
        loaders[split] = make_loader(dataset, cfg["batch_size"], cfg.get("num_workers", 0),
                                     seed=cfg.get("seed", 0), train=(split == "train"))
    return loaders

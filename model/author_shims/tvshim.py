"""The few torchvision functions the original Unsup3D calls, on PIL and torch only.

Behaviour follows torchvision 0.4 (the authors' version) for PIL inputs:
CenterCrop rounds the offsets, resize with a (h, w) size uses bilinear PIL
resampling, to_tensor gives float (C, H, W) in [0, 1]. Python 3.6 compatible.
"""
import math
import numbers

import numpy as np
import torch
from PIL import Image

__all__ = ["crop", "center_crop", "CenterCrop", "resize", "hflip", "to_tensor", "make_grid"]


def crop(img, top, left, height, width):
    return img.crop((left, top, left + width, top + height))


def center_crop(img, output_size):
    if isinstance(output_size, numbers.Number):
        output_size = (int(output_size), int(output_size))
    width, height = img.size
    th, tw = output_size
    top = int(round((height - th) / 2.0))
    left = int(round((width - tw) / 2.0))
    return crop(img, top, left, th, tw)


class CenterCrop(object):
    def __init__(self, size):
        self.size = size

    def __call__(self, img):
        return center_crop(img, self.size)


def resize(img, size, interpolation=Image.BILINEAR):
    if isinstance(size, int):
        w, h = img.size
        if (w <= h and w == size) or (h <= w and h == size):
            return img
        if w < h:
            return img.resize((size, int(size * h / w)), interpolation)
        return img.resize((int(size * w / h), size), interpolation)
    return img.resize(tuple(size[::-1]), interpolation)


def hflip(img):
    return img.transpose(Image.FLIP_LEFT_RIGHT)


def to_tensor(pic):
    array = np.array(pic, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous().float().div(255.0)


def make_grid(tensor, nrow=8, padding=2, normalize=False, range=None, scale_each=False, pad_value=0):
    """torchvision.utils.make_grid for (B, C, H, W) tensors or lists of (C, H, W)."""
    if isinstance(tensor, (list, tuple)):
        tensor = torch.stack(list(tensor), 0)
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() == 3:
        if tensor.size(0) == 1:
            tensor = torch.cat((tensor, tensor, tensor), 0)
        tensor = tensor.unsqueeze(0)
    if tensor.dim() == 4 and tensor.size(1) == 1:
        tensor = torch.cat((tensor, tensor, tensor), 1)
    if normalize:
        tensor = tensor.clone()
        low, high = (float(tensor.min()), float(tensor.max())) if range is None else range
        tensor = tensor.clamp(min=low, max=high).sub(low).div(max(high - low, 1e-5))
    if tensor.size(0) == 1:
        return tensor.squeeze(0)
    nmaps = tensor.size(0)
    xmaps = min(nrow, nmaps)
    ymaps = int(math.ceil(float(nmaps) / xmaps))
    height, width = int(tensor.size(2) + padding), int(tensor.size(3) + padding)
    grid = tensor.new_full((tensor.size(1), height * ymaps + padding, width * xmaps + padding), pad_value)
    k = 0
    for y in np.arange(ymaps):
        for x in np.arange(xmaps):
            if k >= nmaps:
                break
            grid.narrow(1, int(y) * height + padding, height - padding) \
                .narrow(2, int(x) * width + padding, width - padding).copy_(tensor[k])
            k += 1
    return grid

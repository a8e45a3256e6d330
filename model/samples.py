"""Decomposition grids (the report's Fig. 7 layout) written as one PNG with PIL.

One row per named component (input, canonical albedo, canonical depth,
canonical shading, canonical normals, reconstruction: whatever the caller
passes, in its order), one column per image, the row's name at its left.

Layout, in pixels, for R rows of (H, W) tiles and C columns:
    width  = label_width + C * (W + PAD) + PAD
    height = R * (H + PAD) + PAD
(`grid_size` computes it). Python 3.6 / PyTorch 1.2 compatible.
"""
import io
from collections import OrderedDict

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .runfiles import write_bytes

__all__ = ["PAD", "LABEL_WIDTH", "BACKGROUND", "grid_size", "decomposition_rows", "save_decomposition_grid"]

PAD = 2                      # pixels between tiles and around the grid
LABEL_WIDTH = 112            # fits "canonical normals" in PIL's default font
BACKGROUND = (255, 255, 255)
_TEXT_COLOUR = (0, 0, 0)


def grid_size(num_rows, num_cols, height, width, label_width=LABEL_WIDTH):
    """(width, height) in pixels of a grid of (height, width) tiles."""
    return (label_width + num_cols * (width + PAD) + PAD, num_rows * (height + PAD) + PAD)


def _tile_array(image):
    """(C, H, W) tensor in [0, 1], C = 1 or 3 -> uint8 (H, W, 3)."""
    array = image.detach().cpu().float().clamp(0, 1).numpy()
    if array.shape[0] == 1:
        array = np.repeat(array, 3, axis=0)              # grey maps (depth, shading) as RGB
    if array.shape[0] != 3:
        raise ValueError("save_decomposition_grid: images need 1 or 3 channels, got %d" % array.shape[0])
    return np.round(array.transpose(1, 2, 0) * 255).astype(np.uint8)


def _check_rows(rows):
    if not rows:
        raise ValueError("save_decomposition_grid: no rows to draw")
    shapes = set(tuple(images.shape[2:]) for images in rows.values())
    if any(images.dim() != 4 for images in rows.values()) or len(shapes) != 1:
        raise ValueError("save_decomposition_grid: rows must all be (N, C, H, W) with one H, W; got %s"
                         % ", ".join("%s %s" % (name, tuple(images.shape)) for name, images in rows.items()))
    return shapes.pop()


def _draw_label(draw, font, text, top, tile_height):
    draw.text((PAD, top + max(0, tile_height // 2 - 6)), text, fill=_TEXT_COLOUR, font=font)


def _render(rows, max_images, label_width):
    height, width = _check_rows(rows)
    num_cols = min(max_images, min(images.shape[0] for images in rows.values()))
    canvas = Image.new("RGB", grid_size(len(rows), num_cols, height, width, label_width), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for row, (name, images) in enumerate(rows.items()):
        top = PAD + row * (height + PAD)
        if label_width:
            _draw_label(draw, font, str(name), top, height)
        for col in range(num_cols):
            left = label_width + PAD + col * (width + PAD)
            canvas.paste(Image.fromarray(_tile_array(images[col])), (left, top))
    return canvas


def _save_atomic(image, path):
    """PNG written atomically (runfiles.write_bytes)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())


def save_decomposition_grid(path, rows, max_images=8, label_width=LABEL_WIDTH):
    """Write one PNG: a row per component, a column per image.

    Args:
        path: output .png file; written atomically.
        rows: ordered dict name -> tensor (N, C, H, W) in [0, 1], C = 1 or 3,
            the same H, W for every row; values outside [0, 1] are clipped.
        max_images: at most this many columns (also at most the smallest N).
        label_width: pixels of the label column at the left; 0 draws no labels.
    Returns:
        path.
    """
    _save_atomic(_render(rows, max_images, label_width), path)
    return path


def decomposition_rows(cfg, images, canon_depth, canon_albedo, canon_shading, canon_normal, recon_im):
    """The Fig. 7 rows, in [0, 1], from one forward pass (ours or theirs) on `images`.

    Args:
        cfg: the resolved cell (min_depth, max_depth scale the depth row).
        images: (N, 3, H, W) inputs; the other tensors may hold more images and are cut to N.
        canon_depth: (N, H, W); canon_albedo: (N, 3, H, W) in [-1, 1]; canon_shading: (N, 1, H, W);
        canon_normal: (N, H, W, 3) in [-1, 1]; recon_im: (N, 3, H, W) in [-1, 1].
    Returns:
        OrderedDict name -> detached float CPU tensor (N, C, H, W), for save_decomposition_grid.
    """
    n = images.shape[0]
    depth = ((canon_depth[:n] - cfg["min_depth"]) / (cfg["max_depth"] - cfg["min_depth"])).unsqueeze(1)
    rows = [
        ("input", images),
        ("canonical albedo", canon_albedo[:n] / 2 + 0.5),
        ("canonical depth", 1 - depth),  # near is bright
        ("canonical shading", canon_shading[:n]),
        ("canonical normals", canon_normal[:n].permute(0, 3, 1, 2) / 2 + 0.5),
        ("reconstruction", recon_im[:n] / 2 + 0.5),
    ]
    return OrderedDict((k, v.detach().cpu().float().clamp(0, 1)) for k, v in rows)

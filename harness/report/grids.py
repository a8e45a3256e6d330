"""Decomposition grids (samples/*.png) read back as tiles, with the relief made visible.

The trainer writes canonical depth mapped from [min_depth, max_depth] to grey,
so a face whose depth varies by a few percent of that range is a near-uniform
grey. The report stretches each depth and normal tile to its own 2nd-98th
percentile (per channel for normals); the PNG holds no face mask, so the
percentiles are taken over the whole tile. Layout constants come from
model.samples, the module that draws the grid.
"""
from __future__ import annotations

import numpy as np

from model.samples import LABEL_WIDTH, PAD

__all__ = ["GRID_ROWS", "STRETCHED_ROWS", "STRETCH_PERCENTILES", "STRETCH_CAPTION",
           "read_grid", "stretch", "mosaic", "draw_grid"]

# row order of model/evaluate.py save_samples
GRID_ROWS = ("input", "canonical albedo", "canonical depth", "canonical shading",
             "canonical normals", "reconstruction")
STRETCHED_ROWS = ("canonical depth", "canonical normals")
STRETCH_PERCENTILES = (2.0, 98.0)
STRETCH_CAPTION = ("depth and normal tiles stretched per image to their own 2nd-98th percentile "
                   "(normals per channel; over the whole tile, the PNG has no mask)")


def stretch(tile: np.ndarray) -> np.ndarray:
    """(H, W, C) floats in [0, 1] -> each channel mapped so its p2..p98 spans 0..1."""
    lo, hi = np.percentile(tile, STRETCH_PERCENTILES, axis=(0, 1))
    span = np.where(hi - lo > 1e-6, hi - lo, 1.0)  # a constant tile stays as it is
    return np.clip((tile - lo) / span, 0.0, 1.0)


def read_grid(image: np.ndarray, rows=GRID_ROWS) -> dict[str, list[np.ndarray]]:
    """Cut a grid image (H, W, C floats, as matplotlib reads a PNG) into tiles per row.

    Returns:
        row name -> tiles left to right; stretched rows already stretched.
        Empty when the image does not have the grid's layout.
    """
    image = image[..., :3]
    tile = (image.shape[0] - PAD) // len(rows) - PAD
    if tile <= 0 or len(rows) * (tile + PAD) + PAD != image.shape[0]:
        return {}
    cols = (image.shape[1] - LABEL_WIDTH - PAD) // (tile + PAD)
    out = {}
    for r, name in enumerate(rows):
        top = PAD + r * (tile + PAD)
        tiles = [image[top:top + tile, LABEL_WIDTH + PAD + c * (tile + PAD):][:, :tile]
                 for c in range(cols)]
        out[name] = [stretch(t) if name in STRETCHED_ROWS else t for t in tiles]
    return out


def mosaic(tiles: dict[str, list[np.ndarray]], max_cols: int = 8, gap: int = 1) -> np.ndarray:
    """Re-assemble tiles (from read_grid) into one white-gapped image, rows in order.

    The row names are left out: figures label rows with their own, legible text
    (row r's centre is at r * (tile + gap) + tile / 2).
    """
    rows = [r[:max_cols] for r in tiles.values()]
    tile, cols = rows[0][0].shape[0], min(len(r) for r in rows)
    size = lambda n: n * (tile + gap) - gap  # noqa: E731
    out = np.ones((size(len(rows)), size(cols), 3))
    for r, row in enumerate(rows):
        for c, t in enumerate(row[:cols]):
            out[r * (tile + gap):r * (tile + gap) + tile, c * (tile + gap):c * (tile + gap) + tile] = t[..., :3]
    return out


def draw_grid(ax, path: str, max_cols: int = 8) -> bool:
    """Show the stretched grid of one samples PNG on ax with row names; False if unreadable."""
    import matplotlib.image as mpimg  # the figure modules chose the backend already
    try:
        tiles = read_grid(mpimg.imread(path))
    except (OSError, ValueError, SyntaxError):
        tiles = {}
    if not tiles or not all(tiles.values()):
        ax.axis("off")
        return False
    image = mosaic(tiles, max_cols)
    tile = next(iter(tiles.values()))[0].shape[0]
    ax.imshow(image, interpolation="nearest")
    ax.set_yticks([r * (tile + 1) + tile / 2 for r in range(len(tiles))])
    ax.set_yticklabels([n.replace("canonical ", "canon. ") for n in tiles], fontsize=9)
    ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return True

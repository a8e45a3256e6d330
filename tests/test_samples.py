"""model.samples: decomposition grids are real PNGs of the documented size."""
import numpy as np
import pytest
import torch
from PIL import Image

from model.samples import LABEL_WIDTH, PAD, grid_size, save_decomposition_grid

_ROW_NAMES = ("input", "canonical albedo", "canonical depth", "canonical shading",
              "canonical normals", "reconstruction")


def _rows(num_images=5, size=16):
    rows = {}
    for number, name in enumerate(_ROW_NAMES):
        channels = 1 if name in ("canonical depth", "canonical shading") else 3
        rows[name] = torch.full((num_images, channels, size, size), number / 10.0)
    return rows


def test_grid_has_the_documented_pixel_size(tmp_path):
    path = tmp_path / "samples" / "grid.png"              # the folder is created
    save_decomposition_grid(str(path), _rows(num_images=5), max_images=3)
    with Image.open(str(path)) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == grid_size(6, 3, 16, 16)
        assert image.size == (LABEL_WIDTH + 3 * 18 + PAD, 6 * 18 + PAD)
    assert [p.name for p in path.parent.iterdir()] == ["grid.png"]   # no temp file left


def test_tiles_hold_the_row_values_and_labels_are_drawn(tmp_path):
    path = tmp_path / "grid.png"
    save_decomposition_grid(str(path), _rows(num_images=2), max_images=8)
    with Image.open(str(path)) as image:
        pixels = np.array(image)
        assert image.size == grid_size(6, 2, 16, 16)
    for row in range(6):
        top = PAD + row * 18
        tile = pixels[top:top + 16, LABEL_WIDTH + PAD:LABEL_WIDTH + PAD + 16]
        assert (tile == round(row / 10.0 * 255)).all()     # grey rows expanded to RGB
    assert (pixels[:, :LABEL_WIDTH] < 128).any()           # some dark label text


def test_no_labels_and_overwrite(tmp_path):
    path = tmp_path / "grid.png"
    save_decomposition_grid(str(path), _rows(num_images=4), label_width=0)
    save_decomposition_grid(str(path), _rows(num_images=4), label_width=0)
    with Image.open(str(path)) as image:
        assert image.size == grid_size(6, 4, 16, 16, label_width=0)


def test_rows_of_different_sizes_are_rejected(tmp_path):
    rows = {"input": torch.zeros(2, 3, 16, 16), "canonical depth": torch.zeros(2, 1, 8, 8)}
    with pytest.raises(ValueError, match="one H, W"):
        save_decomposition_grid(str(tmp_path / "grid.png"), rows)
    assert not list(tmp_path.iterdir())

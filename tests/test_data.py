"""model.data on small real PNG datasets in the authors' layouts."""
import numpy as np
import pytest
import torch
from PIL import Image

from model.data import (DataError, ImageDataset, PairedDataset, SeededSampler, make_loaders,
                        start_epoch)


def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(str(path))


def _asymmetric_image(size, number):
    """RGB uint8 (size, size, 3): red ramps left to right (shows flips), green = 10 * number."""
    image = np.zeros((size, size, 3), dtype=np.uint8)
    image[:, :, 0] = np.linspace(0, 250, size).astype(np.uint8)[None, :]
    image[:, :, 1] = 10 * number                         # constant: survives resizing exactly
    return image


def _make_synface(root, counts=None, size=16):
    """root/<split>/image/NNN_image.png + root/<split>/depth/NNN_depth.png; value = file number."""
    counts = counts or {"train": 10, "val": 3, "test": 5}
    for split, count in counts.items():
        for number in range(count):
            image = _asymmetric_image(size, number)
            _write_png(root / split / "image" / ("%03d_image.png" % number), image)
            _write_png(root / split / "depth" / ("%03d_depth.png" % number), image[:, ::-1].copy())
    return root


def _make_celeba(root, count=6, size=16):
    for split in ("train", "val", "test"):
        for number in range(count):
            sub = "a" if number % 2 else "b"          # nested folders are walked too
            _write_png(root / split / sub / ("%03d.jpg" % number), _asymmetric_image(size, number))
        (root / split / "notes.txt").write_text("not an image")
    return root


def _cfg(dataset="synface", **overrides):
    cfg = {"dataset": dataset, "image_size": 8, "crop": None, "batch_size": 3, "num_workers": 0,
           "seed": 0}
    cfg.update(overrides)
    return cfg


def _file_number(image):
    """The file number of a (3, H, W) image built by _asymmetric_image."""
    return int(round(float(image[1, 0, 0]) * 255 / 10))


def _train_numbers_and_flips(loader):
    out = []
    for image, _ in loader:
        for item in image:
            out.append((_file_number(item), bool(item[0, 0, 0] > item[0, 0, -1])))
    return out


def test_synface_pairs_image_with_depth_and_shapes(tmp_path):
    root = _make_synface(tmp_path / "synface")
    dataset = PairedDataset(str(root / "test"), image_size=8)
    assert len(dataset) == 5
    assert dataset.paths[2][1].endswith("depth/002_depth.png")
    image, depth = dataset[2]
    assert image.shape == (3, 8, 8) and depth.shape == (3, 8, 8)
    assert image.dtype == torch.float32 and 0 <= float(image.min()) and float(image.max()) <= 1
    # depth was written mirrored: pairing is right if it mirrors the image back
    assert torch.allclose(depth, image.flip(2), atol=1.5 / 255)


def test_celeba_walks_nested_folders_and_skips_non_images(tmp_path):
    root = _make_celeba(tmp_path / "celeba")
    dataset = ImageDataset(str(root / "train"), image_size=8)
    assert len(dataset) == 6
    assert dataset[0].shape == (3, 8, 8)
    loaders = make_loaders(_cfg("celeba", batch_size=4), str(root))
    assert next(iter(loaders["test"])).shape == (4, 3, 8, 8)


def test_centre_crop_then_bilinear_resize_matches_pil(tmp_path):
    rng = np.random.RandomState(0)
    array = rng.randint(0, 256, size=(12, 10, 3)).astype(np.uint8)
    _write_png(tmp_path / "test" / "x.png", array)
    dataset = ImageDataset(str(tmp_path / "test"), image_size=4, crop=6)
    # torchvision CenterCrop: top = round((12 - 6) / 2) = 3, left = round((10 - 6) / 2) = 2
    expected = Image.fromarray(array[3:9, 2:8]).resize((4, 4), Image.BILINEAR)
    expected = torch.from_numpy(np.array(expected)).permute(2, 0, 1).float() / 255
    assert torch.equal(dataset[0], expected)


def test_loaders_keep_the_last_partial_batch_as_the_original_does(tmp_path):
    root = _make_synface(tmp_path / "synface")
    loaders = make_loaders(_cfg(), str(root))
    assert [len(image) for image, _ in loaders["train"]] == [3, 3, 3, 1]   # 10 images, batch 3
    assert len(loaders["test"]) == 2                     # 5 images: 3 + 2
    image, depth = next(iter(loaders["train"]))
    assert image.shape == (3, 3, 8, 8) and depth.shape == (3, 3, 8, 8)
    numbers = [_file_number(im) for batch, _ in loaders["test"] for im in batch]
    assert numbers == [0, 1, 2, 3, 4]                    # file order, unshuffled


def test_test_and_val_are_never_flipped(tmp_path):
    root = _make_synface(tmp_path / "synface")
    loaders = make_loaders(_cfg(), str(root))
    for split in ("val", "test"):
        for image, _ in loaders[split]:
            assert bool((image[:, 0, 0, 0] < image[:, 0, 0, -1]).all())


def test_order_and_flips_are_functions_of_seed_and_epoch(tmp_path):
    root = _make_synface(tmp_path / "synface", counts={"train": 12, "val": 1, "test": 1})
    first = make_loaders(_cfg(), str(root))["train"]
    again = make_loaders(_cfg(), str(root))["train"]
    other_seed = make_loaders(_cfg(seed=1), str(root))["train"]
    seen = _train_numbers_and_flips(first)
    assert seen == _train_numbers_and_flips(again)
    assert seen != _train_numbers_and_flips(other_seed)
    assert sorted(n for n, _ in seen) == list(range(12))
    assert any(f for _, f in seen) and not all(f for _, f in seen)
    start_epoch(first, 1)
    epoch1 = _train_numbers_and_flips(first)
    assert epoch1 != seen
    start_epoch(again, 1)
    assert _train_numbers_and_flips(again) == epoch1


def test_image_and_depth_get_the_same_flip(tmp_path):
    root = _make_synface(tmp_path / "synface", counts={"train": 12, "val": 1, "test": 1})
    for image, depth in make_loaders(_cfg(), str(root))["train"]:
        assert torch.allclose(depth, image.flip(3), atol=1.5 / 255)


def test_resume_skips_the_first_batches_of_the_epoch(tmp_path):
    root = _make_synface(tmp_path / "synface", counts={"train": 12, "val": 1, "test": 1})
    full = make_loaders(_cfg(), str(root))["train"]
    start_epoch(full, 2)
    whole_epoch = _train_numbers_and_flips(full)
    resumed = make_loaders(_cfg(), str(root))["train"]
    start_epoch(resumed, 2, skip_batches=2)
    assert len(resumed) == 2
    assert _train_numbers_and_flips(resumed) == whole_epoch[6:]


def test_sampler_flip_depends_only_on_index_not_shuffle():
    shuffled = SeededSampler(20, seed=3, shuffle=True, flip=True)
    ordered = SeededSampler(20, seed=3, shuffle=False, flip=True)
    assert dict(shuffled) == dict(ordered)


def _one_line_error(cfg, data_dir, *fragments):
    with pytest.raises(DataError) as info:
        make_loaders(cfg, str(data_dir))
    message = str(info.value)
    assert "\n" not in message and message.startswith("data_dir: ")
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_data_dir_is_a_one_line_error(tmp_path):
    _one_line_error(_cfg(), tmp_path / "nowhere", str(tmp_path / "nowhere"), "not a folder",
                    "train/ val/ test/")


def test_missing_split_folder_is_a_one_line_error(tmp_path):
    root = _make_synface(tmp_path / "synface", counts={"train": 3, "val": 1})
    _one_line_error(_cfg(), root, str(root / "test"), "synface layout")


def test_empty_image_folder_is_a_one_line_error(tmp_path):
    root = _make_synface(tmp_path / "synface")
    for path in (root / "train" / "image").iterdir():
        path.unlink()
    _one_line_error(_cfg(), root, str(root / "train" / "image"), "has no images",
                    "train/image/*.png + train/depth/*.png")


def test_missing_depth_files_are_a_one_line_error(tmp_path):
    root = _make_synface(tmp_path / "synface")
    (root / "val" / "depth" / "001_depth.png").unlink()
    _one_line_error(_cfg(), root, str(root / "val" / "depth" / "001_depth.png"),
                    "1 of 3 depth files missing")


def test_empty_celeba_split_is_a_one_line_error(tmp_path):
    root = _make_celeba(tmp_path / "celeba")
    for path in (root / "val").rglob("*.jpg"):
        path.unlink()
    _one_line_error(_cfg("celeba"), root, str(root / "val"), "has no images", "celeba layout")

"""`repro data` and the real data path: archives in the original's layouts -> unpacked -> trained and scored.

The archives are made here from the built-in faces as real image files in the synface
release's frame (256 px, face in the centre 170) and as celeba_crop.py's 128 px crops.
"""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import main
from tests.helpers.archives import COUNTS, celeba_folder, synface_folder, tar_folder, zip_folder
from tests.helpers.author_code import needs_author_code
from tests.helpers.trainer import train, write_cell


def repro_data(*args):
    return CliRunner().invoke(main, ["data"] + [str(a) for a in args])


@pytest.fixture(scope="module")
def synface_zip(tmp_path_factory):
    work = tmp_path_factory.mktemp("synface-archive")
    return zip_folder(synface_folder(work), work / "synface.zip")


@pytest.fixture(scope="module")
def celeba_tar(tmp_path_factory):
    work = tmp_path_factory.mktemp("celeba-archive")
    return tar_folder(celeba_folder(work), work / "celeba_cropped.tar.gz")


@pytest.fixture(scope="module")
def synface_dir(tmp_path_factory, synface_zip):
    dest = tmp_path_factory.mktemp("data")
    result = repro_data("synface", "--dest", dest, "--from", synface_zip)
    assert result.exit_code == 0, result.output
    return dest / "synface"


def test_repro_data_unpacks_an_archive_into_the_loaders_layout(synface_dir, synface_zip):
    for split, n in COUNTS.items():
        assert len(list((synface_dir / split / "image").glob("*.png"))) == n
        assert len(list((synface_dir / split / "depth").glob("*.png"))) == n
    assert sorted(p.name for p in synface_dir.parent.iterdir()) == ["synface"]   # no temp folder left


def test_an_unrecorded_hash_is_printed_and_a_given_one_is_checked(tmp_path, synface_zip):
    printed = repro_data("synface", "--dest", tmp_path / "a", "--from", synface_zip)
    assert printed.exit_code == 0 and "UNVERIFIED" in printed.output
    digest = printed.output.rsplit("sha256 ", 1)[1].split()[0]
    checked = repro_data("synface", "--dest", tmp_path / "b", "--from", synface_zip, "--sha256", digest)
    assert checked.exit_code == 0 and "UNVERIFIED" not in checked.output
    wrong = repro_data("synface", "--dest", tmp_path / "c", "--from", synface_zip, "--sha256", "0" * 64)
    assert wrong.exit_code == 2 and "sha256" in wrong.output and len(wrong.output.strip().splitlines()) == 1
    assert not (tmp_path / "c" / "synface").exists()


@pytest.mark.parametrize("fixture", ["synface_zip", "celeba_tar"])
def test_a_truncated_archive_is_refused_in_one_line_and_nothing_is_written(tmp_path, request, fixture):
    archive = request.getfixturevalue(fixture)
    cut = tmp_path / archive.name
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    dest = tmp_path / "data"
    result = repro_data(fixture.split("_")[0], "--dest", dest, "--from", cut)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("repro: error: data: ") and str(cut) in lines[0]
    assert not dest.exists()                           # no target, no half-unpacked temp folder, no folder


def test_an_archive_of_the_wrong_layout_or_an_existing_target_is_refused(tmp_path, celeba_tar, synface_dir):
    wrong = repro_data("synface", "--dest", tmp_path / "data", "--from", celeba_tar)
    assert wrong.exit_code == 2 and "not the synface layout" in wrong.output and list(tmp_path.iterdir()) == []
    again = repro_data("synface", "--dest", synface_dir.parent, "--from", celeba_tar)
    assert again.exit_code == 2 and "already exists" in again.output
    no_url = repro_data("celeba", "--dest", tmp_path / "data")
    assert no_url.exit_code == 2 and "celeba_crop.py" in no_url.output and list(tmp_path.iterdir()) == []


def _done(proc, run):
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads((run / "eval.json").read_text())


@pytest.mark.slow  # real training runs: CI runs them (-m slow); the default suite stays fast
def test_ours_trains_and_scores_from_an_unpacked_synface_archive(tmp_path, synface_dir):
    run = tmp_path / "run"
    evaluation = _done(train(write_cell(tmp_path, dataset="synface", data_dir=str(synface_dir), batch_size=2), run), run)
    assert evaluation["n_images"] == COUNTS["test"] and 0 < evaluation["side_mean"] < 1
    assert 0 < evaluation["mad_mean"] < 90
    assert json.loads((run / "config.json").read_text())["crop"] == 170   # the original's crop, unasked
    records = [json.loads(line) for line in (run / "train.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records] == [0, 1, 2]                      # 5 images, batch 2: the last one kept


@pytest.mark.slow  # real training runs: CI runs them (-m slow); the default suite stays fast
def test_ours_trains_on_a_celeba_layout_and_says_there_is_no_depth(tmp_path, celeba_tar):
    assert repro_data("celeba", "--dest", tmp_path / "data", "--from", celeba_tar).exit_code == 0
    cell = write_cell(tmp_path, dataset="celeba", data_dir=str(tmp_path / "data" / "celeba"), batch_size=2)
    run = tmp_path / "run"
    evaluation = _done(train(cell, run), run)
    assert evaluation == {"n_images": COUNTS["test"], "depth": False,
                          "reason": "dataset celeba has no ground-truth depth: no SIDE, no MAD"}
    assert (run / "samples" / "test.png").is_file()
    again = train(cell, run)                               # a rerun resumes after training: no crash either
    assert again.returncode == 0 and json.loads((run / "eval.json").read_text()) == evaluation


# the authors' nets are 64 px at paper widths: ~10 s a step of 4 images on one thread
AUTHOR = {"impl": "author", "batch_size": 4, "num_sample_images": 2}


@needs_author_code
@pytest.mark.slow
def test_the_authors_code_trains_and_scores_from_an_unpacked_synface_archive(tmp_path, synface_dir):
    run = tmp_path / "run"
    cell = write_cell(tmp_path, dataset="synface", data_dir=str(synface_dir), **AUTHOR)
    evaluation = _done(train(cell, run), run)
    assert evaluation["n_images"] == COUNTS["test"] and 0 < evaluation["side_mean"] < 1
    env = json.loads((run / "env.json").read_text())
    assert env["author_cfgs"]["crop"] == 170 and env["author_cfgs"]["load_gt_depth"] is True
    assert [json.loads(line)["iter"] for line in (run / "train.jsonl").read_text().splitlines()] == [0, 1]


@needs_author_code
@pytest.mark.slow
def test_the_authors_code_trains_on_a_celeba_layout(tmp_path, celeba_tar):
    assert repro_data("celeba", "--dest", tmp_path / "data", "--from", celeba_tar).exit_code == 0
    run = tmp_path / "run"
    cell = write_cell(tmp_path, dataset="celeba", data_dir=str(tmp_path / "data" / "celeba"), **AUTHOR)
    evaluation = _done(train(cell, run), run)
    assert evaluation["depth"] is False and (run / "samples" / "test.png").is_file()

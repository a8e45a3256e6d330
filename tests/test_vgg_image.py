"""An image that carries VGG16 weights trains the paper's perceptual loss (marker: docker).

The real download cannot run here, so the image's fetch step (the block of
docker/cpu-torch1.8/Dockerfile, verbatim) is built on top of the cpu-torch1.8 image with a
stand-in weights file in the build context, and a tiny `vgg_weights: image` cell runs in it
through the docker executor. Without an engine these tests skip, except under CI=true.
The lint of the fetch step in every image that has one needs no engine.
"""
import json
import re
import shutil
from pathlib import Path

import pytest

from harness import images
from harness.executors.docker import DockerExecutor, DockerSettings
from tests.helpers import cells
from tests.helpers.cells import run_to_end
from tests.helpers.engine import local_base
from tests.helpers.vgg import stand_in_weights

ROOT = Path(__file__).resolve().parents[1]
BASE_STACK = "cpu-torch1.8"
STACK = "vgg-stand-in"  # a test-only stack: its image is repro-unsup3d:vgg-stand-in


def fetch_block(dockerfile: Path) -> str:
    """The Dockerfile's VGG16 step: from its comment to `ENV REPRO_VGG_WEIGHTS=...`."""
    match = re.search(r"^# VGG16 ImageNet weights.*?^ENV REPRO_VGG_WEIGHTS=\S+$", dockerfile.read_text(), re.M | re.S)
    assert match, "%s has no VGG16 fetch step" % dockerfile
    return match.group(0)


@pytest.fixture(scope="module")
def image(client, tmp_path_factory):
    """repro-unsup3d:vgg-stand-in: the cpu-torch1.8 image plus its own fetch step, fed a stand-in."""
    if images.image_info(client, BASE_STACK) is None:
        local_base(client, "repro-base:bullseye")
        images.build(client, BASE_STACK)
    context = tmp_path_factory.mktemp("vgg-context")
    weights = stand_in_weights(context)
    shutil.copy2(ROOT / "docker" / "fetch-vgg.sh", context / "fetch-vgg.sh")
    (context / "Dockerfile").write_text("FROM %s\n%s\n" % (images.image_name(BASE_STACK),
                                                           fetch_block(ROOT / "docker" / BASE_STACK / "Dockerfile")))
    _, chunks = client.images.build(path=str(context), tag=images.image_name(STACK), network_mode="host",
                                    buildargs={"VGG16_FILE": weights.name}, rm=True, forcerm=True)
    log = [c.get("stream", "") for c in chunks]
    yield images.require_image(client, STACK), weights, log
    client.images.remove(images.image_name(STACK), force=True)


@pytest.mark.parametrize("stack", ["cpu-torch1.8", "cuda9.2", "cuda10.0", "cuda11.3"])
def test_every_gpu_image_fetches_the_pinned_weights_to_the_fixed_path(stack):
    block = fetch_block(ROOT / "docker" / stack / "Dockerfile")
    assert "ARG VGG16_FILE=vgg16-397923af.pth\n" in block  # torchvision's ImageNet vgg16
    assert "COPY fetch-vgg.sh vgg16-*.pth /opt/vgg16/\n" in block  # a docker/ copy beats the download
    # only the CPU-first image may build without them (offline); a GPU-only image must not
    optional = "--optional " if stack == "cpu-torch1.8" else ""
    assert 'RUN sh /opt/vgg16/fetch-vgg.sh %s/opt/vgg16 "${VGG16_FILE}"\n' % optional in block
    assert block.endswith("ENV REPRO_VGG_WEIGHTS=/opt/vgg16/vgg16.pth")  # the link fetch-vgg.sh makes


@pytest.mark.docker
def test_the_fetch_step_installs_the_stand_in_at_the_fixed_path(client, image):
    info, weights, log = image
    assert any("%s from the build context verified" % weights.name in line for line in log), log
    out = client.containers.run(info.name, ["sh", "-c", 'readlink "$REPRO_VGG_WEIGHTS"'], remove=True,
                                network_mode="none")
    assert out.decode().strip() == weights.name


@pytest.mark.docker
def test_a_tiny_cell_in_the_image_trains_with_its_weights(client, image, tmp_path):
    info, weights, _ = image
    cell, run_dir = cells.make_cell(tmp_path, STACK, "{vgg_weights: image}", executor="docker", threads=2)
    executor = DockerExecutor(DockerSettings(cpus=2, memory="4g"), client=client)
    _, state, reason = run_to_end(executor, cell, run_dir)
    assert (state, reason) == ("done", ""), (run_dir / "stdout.log").read_text()[-2000:]
    env = json.loads((run_dir / "env.json").read_text())
    assert env["perceptual"] == "on" and env["perceptual_reason"] == "vgg16 weights from /opt/vgg16/" + weights.name
    assert env["torch"].startswith("1.8.1") and env["image_digest"] == info.id
    records = [json.loads(l) for l in (run_dir / "train.jsonl").read_text().splitlines()]
    assert records and all("loss_perc" in r and "loss_perc_flip" in r for r in records)

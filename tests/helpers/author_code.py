"""Import the original authors' modules, read-only, from the checkout model.author_code finds.

Tests that need their code ask for the `author_code` fixture (or carry `needs_author_code`):
without a checkout they skip naming where it was looked for, except under CI=true, where
../shared/third_party/unsup3d is used and a missing one is a failure (CI must run them).

torchvision cannot load beside CPU torch here, so a stub module stands in for
the one thing their networks.py needs from it: `models.vgg16().features`,
built from our own VGG16 definition (seeded random weights in tests).
"""
import importlib.util
import os
import sys
import types
from pathlib import Path

import pytest

from model.author_code import SHARED_DIR, find_author_code
from tests.helpers.engine import unavailable

__all__ = ["AUTHOR_ROOT", "AUTHOR_MISSING", "author_code", "needs_author_code", "author_checkout_here",
           "no_author_checkout", "install_torchvision_stub",
           "load_author_module", "load_author_package", "seeded_vgg_state", "build_author_and_ours"]


def _locate():
    """(checkout, why it is missing or None): CI takes the shared snapshot, others the trainer's lookup."""
    if os.environ.get("CI", "").lower() == "true":
        found = (Path(SHARED_DIR) / "unsup3d" / "model.py").is_file()
        return Path(SHARED_DIR), None if found else "no authors' code at %s" % SHARED_DIR
    path, why = find_author_code()
    return Path(path or SHARED_DIR), why


AUTHOR_ROOT, AUTHOR_MISSING = _locate()


@pytest.fixture(scope="session")
def author_code() -> Path:
    """The authors' checkout; skips (fails under CI=true) when there is none."""
    if AUTHOR_MISSING:
        unavailable(AUTHOR_MISSING)
    return AUTHOR_ROOT


needs_author_code = pytest.mark.usefixtures("author_code")


@pytest.fixture
def author_checkout_here(tmp_path_factory, monkeypatch) -> Path:
    """$REPRO_AUTHOR_CODE_DIR at a folder the lookup accepts (an empty unsup3d/model.py), so the
    harness's run/skip verdicts (which look for the file, never import it) do not depend on this machine."""
    stub = tmp_path_factory.mktemp("unsup3d-stub")
    (stub / "unsup3d").mkdir()
    (stub / "unsup3d" / "model.py").write_text("")
    monkeypatch.setenv("REPRO_AUTHOR_CODE_DIR", str(stub))
    return stub


@pytest.fixture
def no_author_checkout(tmp_path_factory, monkeypatch) -> None:
    """No checkout anywhere the lookup looks (as on a fresh clone offline)."""
    nowhere = tmp_path_factory.mktemp("no-author-code")
    monkeypatch.delenv("REPRO_AUTHOR_CODE_DIR", raising=False)
    monkeypatch.setattr("model.author_code.FETCHED_DIR", str(nowhere / "fetched"))
    monkeypatch.setattr("model.author_code.SHARED_DIR", str(nowhere / "shared"))


def install_torchvision_stub(vgg_state=None):
    """Put a minimal `torchvision` on sys.modules; vgg16() returns our VGG16Features layout."""
    from model.networks import VGG16Features

    def vgg16(pretrained=False, **_):
        net = VGG16Features()
        if vgg_state is not None:
            net.load_state_dict(vgg_state)
        return net

    tv = types.ModuleType("torchvision")
    tv.models = types.SimpleNamespace(vgg16=vgg16)
    tv.utils = types.SimpleNamespace(make_grid=None)
    sys.modules["torchvision"] = tv
    return tv


def load_author_module(name):
    """Load unsup3d/<name>.py as a standalone module (no package __init__ side effects)."""
    path = AUTHOR_ROOT / "unsup3d" / ("%s.py" % name)
    spec = importlib.util.spec_from_file_location("author_unsup3d_%s" % name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------
# the whole original package, through the adapter's shims (tests/test_equivalence.py,
# tests/test_author_adapter.py, benches/bench_author_vs_ours.py)

def load_author_package(vgg_state=None, align_corners=True):
    """Their `unsup3d` package imported from AUTHOR_ROOT with model.author_shims."""
    from model.author_shims import load_author_code
    return load_author_code(str(AUTHOR_ROOT), renderer="torch", align_corners=align_corners,
                            vgg_state=vgg_state)


def seeded_vgg_state(seed=0):
    """A torchvision-layout vgg16 'features.*' state dict with seeded random weights."""
    import torch
    from model.author_shims.vgg import VGG16
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    net = VGG16()
    torch.set_rng_state(state)
    return dict(("features." + k.split(".", 1)[1], v) for k, v in net.state_dict().items())


def author_cfgs(cfg):
    """Their Unsup3D cfgs dict for one of our resolved configs (model keys only)."""
    return {
        "image_size": cfg["image_size"], "min_depth": cfg["min_depth"], "max_depth": cfg["max_depth"],
        "border_depth": cfg["border_depth"], "xyz_rotation_range": cfg["xyz_rotation_range"],
        "xy_translation_range": cfg["xy_translation_range"],
        "z_translation_range": cfg["z_translation_range"], "use_conf_map": cfg["use_conf_map"],
        "lam_perc": cfg["lam_perc"] if cfg["perceptual"] == "on" else 0.0,
        "lam_flip": cfg["lam_flip"], "lr": cfg["lr"], "rot_center_depth": cfg["rot_center_depth"],
        "fov": cfg["fov"], "renderer_min_depth": cfg["renderer_near"],
        "renderer_max_depth": cfg["renderer_far"], "load_gt_depth": False,
    }


def build_author_and_ours(cfg, vgg_state, dtype=None):
    """Their Unsup3D and our PhotoGeoAutoencoder for one config, ours holding their weights.

    Their model.py hard-codes the paper widths; when cfg asks for others, their nets
    are rebuilt with *their* networks.py classes at cfg's widths (64x64 only).
    dtype=torch.float64 converts both (their camera K/inv_K too, see test_equivalence).
    """
    import types
    import torch
    from model.photogeo import PhotoGeoAutoencoder
    pkg = load_author_package(vgg_state)
    theirs = pkg.Unsup3D(author_cfgs(cfg))
    theirs.trainer = types.SimpleNamespace(current_epoch=0)
    nets = sys.modules["unsup3d.networks"]
    paper = (cfg["nf"], cfg["zdim"], cfg["conf_nf"], cfg["conf_zdim"], cfg["enc_nf"]) == (64, 256, 64, 128, 32)
    if not paper:
        theirs.netD = nets.EDDeconv(cin=3, cout=1, nf=cfg["nf"], zdim=cfg["zdim"], activation=None)
        theirs.netA = nets.EDDeconv(cin=3, cout=3, nf=cfg["nf"], zdim=cfg["zdim"])
        theirs.netL = nets.Encoder(cin=3, cout=4, nf=cfg["enc_nf"])
        theirs.netV = nets.Encoder(cin=3, cout=6, nf=cfg["enc_nf"])
        theirs.netC = nets.ConfNet(cin=3, cout=2, nf=cfg["conf_nf"], zdim=cfg["conf_zdim"])
    ours = PhotoGeoAutoencoder(cfg, vgg_state if cfg["perceptual"] == "on" else None)
    if dtype is not None:
        for name in theirs.network_names + ["PerceptualLoss"]:
            setattr(theirs, name, getattr(theirs, name).to(dtype))
        # their Renderer builds K in float32 and inverts it in float32; ours keeps K float32
        # and inverts it in the working dtype: the same here
        theirs.renderer.K = theirs.renderer.K.to(dtype)
        theirs.renderer.inv_K = torch.inverse(theirs.renderer.K[0]).unsqueeze(0)
        ours = ours.to(dtype)
    for name in theirs.network_names:
        ours.nets[name].load_state_dict(getattr(theirs, name).state_dict())
    return theirs, ours

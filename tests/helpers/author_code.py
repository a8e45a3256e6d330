"""Import the original authors' modules from ../shared/third_party/unsup3d, read-only.

torchvision cannot load beside CPU torch here, so a stub module stands in for
the one thing their networks.py needs from it: `models.vgg16().features`,
built from our own VGG16 definition (seeded random weights in tests).
"""
import importlib.util
import sys
import types
from pathlib import Path

AUTHOR_ROOT = Path(__file__).resolve().parents[3] / "shared" / "third_party" / "unsup3d"


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

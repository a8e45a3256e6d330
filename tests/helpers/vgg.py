"""A stand-in for torchvision's VGG16 ImageNet weights: the real layer shapes, random values.

The real file cannot be downloaded here; model/losses.py load_vgg_state needs its
'features.*' keys, and docker/fetch-vgg.sh its naming rule vgg16-<sha256 prefix>.pth.
"""
import hashlib
from pathlib import Path

__all__ = ["stand_in_weights"]


def stand_in_weights(folder: Path, seed: int = 0) -> Path:
    """Save a vgg16 'features.*' state dict (layers up to relu3_3, seeded random values)
    as folder/vgg16-<its sha256 prefix>.pth and return that path."""
    import torch
    from model.networks import VGG16Features
    generator = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(v.shape, generator=generator) * 0.05
             for k, v in VGG16Features().state_dict().items()}  # keys 'features.N.weight|bias'
    folder.mkdir(parents=True, exist_ok=True)
    raw = folder / "vgg16-stand-in.tmp"
    torch.save(state, str(raw))
    path = folder / ("vgg16-%s.pth" % hashlib.sha256(raw.read_bytes()).hexdigest()[:8])
    raw.replace(path)
    return path

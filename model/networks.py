"""The five networks of Unsup3D and the VGG16 features of its perceptual loss.

Layer order matches the original's `networks.py` one for one at 64x64, so a
state dict of theirs loads into ours (the equivalence test relies on it) and the
`paper` preset has exactly their parameter counts. Other power-of-two sizes add
or drop one stride-2 level per factor of two (`cpu-small` uses 32x32).
"""
import math

import torch
import torch.nn as nn

from .config import CHANNELS_PER_GROUP

__all__ = ["Encoder", "EDDeconv", "ConfNet", "VGG16Features", "vgg_layers", "build_networks", "NETWORK_NAMES"]

NETWORK_NAMES = ("netD", "netA", "netL", "netV", "netC")


def _level_channels(image_size, nf):
    """Widths of the stride-2 levels that take image_size down to 4x4: nf, 2nf, 4nf, ..."""
    levels = int(round(math.log2(image_size))) - 2  # 64 -> 4 levels (64,32,16,8 -> 4)
    return [nf * 2 ** i for i in range(levels)]


def _conv(cin, cout, k, s, p):
    return nn.Conv2d(cin, cout, kernel_size=k, stride=s, padding=p, bias=False)


def _deconv(cin, cout, k, s, p):
    return nn.ConvTranspose2d(cin, cout, kernel_size=k, stride=s, padding=p, bias=False)


def _gn(channels):
    # 4 channels per group, as the original at nf 64 (GroupNorm(16, 64), (32, 128), ...).
    # Keeping its 16 groups at smaller widths instead leaves one channel per group at
    # nf 16 (instance norm): cpu-small then predicted the same albedo and depth for
    # every image and never beat flat depth (SIDE 1.73 vs 1.55 at 800 steps).
    return nn.GroupNorm(channels // CHANNELS_PER_GROUP, channels)


def _down_path(cin, nf, zdim, image_size):
    """Conv + GroupNorm + LeakyReLU levels to 4x4 (no norm on the last), then 4x4 -> 1x1."""
    widths = _level_channels(image_size, nf)
    layers = []
    prev = cin
    for i, width in enumerate(widths):
        layers.append(_conv(prev, width, 4, 2, 1))
        if i < len(widths) - 1:
            layers.append(_gn(width))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        prev = width
    layers += [_conv(prev, zdim, 4, 1, 0), nn.ReLU(inplace=True)]
    return layers, widths


class Encoder(nn.Module):
    """Image -> vector (light: 4, view: 6); plain ReLU, tanh output, as the original."""

    def __init__(self, cin, cout, nf=64, image_size=64, activation=nn.Tanh):
        super(Encoder, self).__init__()
        widths = _level_channels(image_size, nf)
        layers = []
        prev = cin
        for width in widths:
            layers += [_conv(prev, width, 4, 2, 1), nn.ReLU(inplace=True)]
            prev = width
        layers += [_conv(prev, prev, 4, 1, 0), nn.ReLU(inplace=True), _conv(prev, cout, 1, 1, 0)]
        if activation is not None:
            layers.append(activation())
        self.network = nn.Sequential(*layers)

    def forward(self, x):  # (B, cin, S, S) -> (B, cout)
        return self.network(x).reshape(x.size(0), -1)


class EDDeconv(nn.Module):
    """Encoder-decoder (no skips) for canonical depth (cout 1) and albedo (cout 3)."""

    def __init__(self, cin, cout, zdim=128, nf=64, image_size=64, activation=nn.Tanh):
        super(EDDeconv, self).__init__()
        layers, widths = _down_path(cin, nf, zdim, image_size)
        top = widths[-1]
        layers += [_deconv(zdim, top, 4, 1, 0), nn.ReLU(inplace=True),
                   _conv(top, top, 3, 1, 1), nn.ReLU(inplace=True)]
        for wide, narrow in zip(widths[:0:-1], widths[-2::-1]):  # 8nf->4nf, 4nf->2nf, 2nf->nf
            layers += [_deconv(wide, narrow, 4, 2, 1), _gn(narrow), nn.ReLU(inplace=True),
                       _conv(narrow, narrow, 3, 1, 1), _gn(narrow), nn.ReLU(inplace=True)]
        layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                   _conv(nf, nf, 3, 1, 1), _gn(nf), nn.ReLU(inplace=True),
                   _conv(nf, nf, 5, 1, 2), _gn(nf), nn.ReLU(inplace=True),
                   _conv(nf, cout, 5, 1, 2)]
        if activation is not None:
            layers.append(activation())
        self.network = nn.Sequential(*layers)

    def forward(self, x):  # (B, cin, S, S) -> (B, cout, S, S)
        return self.network(x)


class ConfNet(nn.Module):
    """Confidence maps: full-size (photometric, 2 ch) and 1/4 size (perceptual, 2 ch)."""

    def __init__(self, cin, cout=2, zdim=128, nf=64, image_size=64):
        super(ConfNet, self).__init__()
        layers, widths = _down_path(cin, nf, zdim, image_size)
        layers += [_deconv(zdim, widths[-1], 4, 1, 0), nn.ReLU(inplace=True)]
        for wide, narrow in zip(widths[:1:-1], widths[-2:0:-1]):  # up to 2nf at S/4
            layers += [_deconv(wide, narrow, 4, 2, 1), _gn(narrow), nn.ReLU(inplace=True)]
        self.network = nn.Sequential(*layers)
        self.out_net1 = nn.Sequential(
            _deconv(2 * nf, nf, 4, 2, 1), _gn(nf), nn.ReLU(inplace=True),
            _deconv(nf, nf, 4, 2, 1), _gn(nf), nn.ReLU(inplace=True),
            _conv(nf, cout, 5, 1, 2), nn.Softplus())
        self.out_net2 = nn.Sequential(_conv(2 * nf, cout, 3, 1, 1), nn.Softplus())

    def forward(self, x):  # (B, cin, S, S) -> (B, 2, S, S), (B, 2, S/4, S/4)
        features = self.network(x)
        return self.out_net1(features), self.out_net2(features)


def vgg_layers(cfg, prev):
    """VGG's layer list for `cfg` (channel counts, "M" for a 2x2 max-pool) after `prev` channels."""
    layers = []
    for item in cfg:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(prev, item, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            prev = item
    return layers


class VGG16Features(nn.Module):
    """torchvision's vgg16().features up to relu3_3 (indices 0..15), defined here
    because torchvision cannot be installed beside CPU torch. `load_torchvision`
    takes a torchvision vgg16 state dict (keys 'features.N.weight')."""

    _CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256)

    def __init__(self):
        super(VGG16Features, self).__init__()
        self.features = nn.Sequential(*vgg_layers(self._CFG, 3))
        for p in self.parameters():
            p.requires_grad = False

    def load_torchvision(self, state_dict):
        own = {k: v for k, v in state_dict.items()
               if k.startswith("features.") and int(k.split(".")[1]) < len(self.features)}
        self.load_state_dict(own)

    def forward(self, x):  # (B, 3, S, S) normalised -> relu3_3 (B, 256, S/4, S/4)
        return self.features(x)


def build_networks(cfg):
    """The five trainable networks of a resolved config, keyed by the original's names."""
    size = cfg["image_size"]
    nets = {
        "netD": EDDeconv(3, 1, zdim=cfg["zdim"], nf=cfg["nf"], image_size=size, activation=None),
        "netA": EDDeconv(3, 3, zdim=cfg["zdim"], nf=cfg["nf"], image_size=size),
        "netL": Encoder(3, 4, nf=cfg["enc_nf"], image_size=size),
        "netV": Encoder(3, 6, nf=cfg["enc_nf"], image_size=size),
    }
    if cfg["use_conf_map"]:
        nets["netC"] = ConfNet(3, 2, zdim=cfg["conf_zdim"], nf=cfg["conf_nf"], image_size=size)
    return nets

"""Unsup3D's losses: confidence-weighted L1 and the VGG16 relu3_3 perceptual loss.

Both follow the original: with a confidence map sigma the L1 term is
|a-b| * sqrt(2) / sigma + log(sigma) (a Laplacian likelihood) and the perceptual
term (f1-f2)^2 / (2 sigma^2) + log(sigma) (a Gaussian one), averaged over the
valid (masked) pixels.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .networks import VGG16Features

__all__ = ["photometric_loss", "PerceptualLoss", "load_vgg_state", "standin_vgg_state", "STANDIN_SEED"]

EPS = 1e-7
STANDIN_SEED = 0   # one stand-in network for every cell: its weights do not follow the cell's seed


def _masked_mean(loss, mask):
    if mask is None:
        return loss.mean()
    mask = mask.expand_as(loss)
    return (loss * mask).sum() / mask.sum()


def photometric_loss(im1, im2, mask=None, conf_sigma=None):
    """(B, C, H, W) images, (B, 1, H, W) mask and sigma -> scalar."""
    loss = (im1 - im2).abs()
    if conf_sigma is not None:
        loss = loss * 2 ** 0.5 / (conf_sigma + EPS) + (conf_sigma + EPS).log()
    return _masked_mean(loss, mask)


def load_vgg_state(path):
    """A torchvision vgg16 state dict from a file (ImageNet weights; not downloadable here)."""
    state = torch.load(path, map_location="cpu")
    if not any(k.startswith("features.") for k in state):
        raise ValueError("vgg_weights: %s is not a torchvision vgg16 state dict (no 'features.*' keys)" % path)
    return state


def standin_vgg_state(seed=STANDIN_SEED):
    """A STAND-IN for the ImageNet VGG16: torchvision's own initialisation of vgg16's convs
    (Kaiming normal, fan_out, ReLU; zero bias) drawn from a fixed generator, in torchvision's
    state-dict layout. It keeps the loss's structure (relu3_3 features, the 1/(2 sigma^2)
    confidence term) so its stability can be studied where no ImageNet weights exist; its
    features are random, not perceptual, so no result with it speaks for the original's."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, param in VGG16Features().named_parameters():
        if name.endswith("weight"):
            fan_out = param.shape[0] * param.shape[2] * param.shape[3]
            state[name] = torch.randn(param.shape, generator=generator) * (2.0 / fan_out) ** 0.5
        else:
            state[name] = torch.zeros(param.shape)
    return state


class PerceptualLoss(nn.Module):
    """Distance of relu3_3 features, images in [-1, 1]; VGG weights are frozen.

    ``forward(recons, target, masks, sigmas)`` scores several reconstructions (the
    predicted and the mirrored one) against one target in a single VGG pass, so the
    target's features are computed once: 3B images through VGG instead of 4B. Each
    returned loss is the original's ``PerceptualLoss(recon, target, mask, sigma)``.
    """

    def __init__(self, vgg_state=None):
        super(PerceptualLoss, self).__init__()
        self.register_buffer("mean_rgb", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std_rgb", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.vgg = VGG16Features()
        if vgg_state is not None:
            self.vgg.load_torchvision(vgg_state)

    def forward(self, recons, target, masks, sigmas):
        """recons: list of (B, C, H, W); target (B, C, H, W); masks and sigmas: one per recon
        ((B, 1, H, W) or None). Returns a list of scalars, one per recon."""
        both = (torch.cat(list(recons) + [target], 0) / 2 + 0.5 - self.mean_rgb) / self.std_rgb
        *recon_features, target_features = torch.chunk(self.vgg(both), len(recons) + 1, dim=0)
        return [_feature_distance(f, target_features, mask, sigma)
                for f, mask, sigma in zip(recon_features, masks, sigmas)]


def _feature_distance(f1, f2, mask, conf_sigma):
    """(B, 256, S/4, S/4) features -> the confidence-weighted mean squared distance."""
    loss = (f1 - f2) ** 2
    if conf_sigma is not None:
        loss = loss / (2 * conf_sigma ** 2 + EPS) + (conf_sigma + EPS).log()
    if mask is not None:
        scale = mask.shape[2] // loss.shape[2], mask.shape[3] // loss.shape[3]
        mask = F.avg_pool2d(mask, kernel_size=scale, stride=scale)
    return _masked_mean(loss, mask)

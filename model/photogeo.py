"""The photo-geometric autoencoder: image -> depth, albedo, light, view -> image.

`PhotoGeoAutoencoder.forward(images)` returns a `Decomposition` (a dict with
attribute access) holding every intermediate the losses, the samples and the
evaluation need; `.losses` holds each loss term and the total. The rendering
half (`shade`, `reconstruct`) is also used by the built-in data generator, so
the synthetic data is exactly what the model can represent.
"""
import functools
import math

import torch
import torch.nn as nn

from . import compat
from .geometry import depth_to_points, intrinsics, normals_from_depth, points_to_grid2d, \
    unwarp_points, view_transform, warp_points
from .losses import PerceptualLoss, photometric_loss
from .networks import build_networks
from .renderer import grid_faces, make_renderer

__all__ = ["Decomposition", "PhotoGeoAutoencoder", "Camera"]


class Decomposition(dict):
    """Named outputs of one forward pass: out.canon_depth, out.losses['total'], ...

    An output set with `later(name, compute)` is computed when first read: training never
    reads recon_normal (evaluation does), so a training step does not pay for it.
    """

    def later(self, name, compute):
        self.__dict__.setdefault("_later", {})[name] = compute

    def __getattr__(self, name):  # only for names not set as attributes
        compute = self.__dict__.get("_later", {}).pop(name, None)
        if compute is None:
            return self[name]
        value = compute()
        setattr(self, name, value)
        return value


def _rescale(x, low, high):
    """[-1, 1] -> [low, high]."""
    return (1 + x) / 2 * high + (1 - x) / 2 * low


class Camera(object):
    """Intrinsics, mesh renderer and view warps for one image size (no parameters)."""

    def __init__(self, cfg):
        self.cfg = cfg
        size = cfg["image_size"]
        self.K = intrinsics(size, cfg["fov"])
        self.faces = grid_faces(size, size)  # (F, 3)
        self.renderer = make_renderer(cfg["renderer"], size, self.K,
                                      near=cfg["renderer_near"], far=cfg["renderer_far"])

    def shade(self, depth, albedo, light_a, light_b, light_d):
        """Lambertian shading of canonical albedo (B,3,H,W) in [-1,1] -> image in [-1,1]."""
        normal = normals_from_depth(depth, self.K)  # (B, H, W, 3)
        diffuse = (normal * light_d.view(-1, 1, 1, 3)).sum(3).clamp(min=0).unsqueeze(1)
        shading = light_a.view(-1, 1, 1, 1) + light_b.view(-1, 1, 1, 1) * diffuse
        return (albedo / 2 + 0.5) * shading * 2 - 1, normal, diffuse

    def reconstruct(self, canon_depth, canon_im, view):
        """Warp canonical depth/image to the input view: depth by rendering the
        warped mesh, image by sampling the canonical image where each input pixel's
        3D point lands after the inverse warp."""
        cfg = self.cfg
        b, h, w = canon_depth.shape
        rot, trans = view_transform(view)
        points = depth_to_points(canon_depth, self.K).reshape(b, -1, 3)
        warped = warp_points(points, rot, trans, cfg["rot_center_depth"])
        depth = self.renderer.render_depth(warped, self.faces.to(warped.device))
        margin = (cfg["max_depth"] - cfg["min_depth"]) / 2
        depth = depth.clamp(min=cfg["min_depth"] - margin, max=cfg["max_depth"] + margin)
        back = unwarp_points(depth_to_points(depth, self.K).reshape(b, -1, 3), rot, trans,
                             cfg["rot_center_depth"])
        grid = points_to_grid2d(back.reshape(b, h, w, 3), self.K)
        image = compat.grid_sample(canon_im, grid, cfg["align_corners"])
        # pixels the mesh does not cover were clamped to the far limit
        valid = (depth < cfg["max_depth"] + margin).float()  # (B, H, W)
        return depth, image, valid

    def to(self, device):
        self.K = self.K.to(device)
        self.faces = self.faces.to(device)
        return self


class PhotoGeoAutoencoder(nn.Module):
    def __init__(self, cfg, vgg_state=None):
        super(PhotoGeoAutoencoder, self).__init__()
        self.cfg = cfg
        self.nets = nn.ModuleDict(build_networks(cfg))
        self.camera = Camera(cfg)
        self.perceptual = PerceptualLoss(vgg_state) if cfg["perceptual"] == "on" else None

    def _canonical_depth(self, images):
        cfg = self.cfg
        raw = self.nets["netD"](images).squeeze(1)  # (B, H, W)
        b, h, w = raw.shape
        depth = (raw - raw.view(b, -1).mean(1).view(b, 1, 1)).tanh()
        depth = unclamped = _rescale(depth, cfg["min_depth"], cfg["max_depth"])
        border = torch.ones(1, h, w, dtype=depth.dtype, device=depth.device)
        border[:, :, 2:w - 2] = 0  # the two outermost columns on each side
        depth = depth * (1 - border) + border * cfg["border_depth"]
        return raw, unclamped, torch.cat([depth, depth.flip(2)], 0)  # (2B, H, W): as is, mirrored

    def _light(self, images):
        light = self.nets["netL"](images).repeat(2, 1)  # (2B, 4)
        a = _rescale(light[:, :1], 0.0, 1.0)  # ambient
        b = _rescale(light[:, 1:2], 0.0, 1.0)  # diffuse
        d = torch.cat([light[:, 2:], torch.ones_like(light[:, :1])], 1)
        return a, b, d / (d ** 2).sum(1, keepdim=True) ** 0.5

    def _view(self, images):
        cfg = self.cfg
        view = self.nets["netV"](images).repeat(2, 1)  # (2B, 6) in [-1, 1]
        return torch.cat([view[:, :3] * math.pi / 180 * cfg["xyz_rotation_range"],
                          view[:, 3:5] * cfg["xy_translation_range"],
                          view[:, 5:] * cfg["z_translation_range"]], 1)

    def _confidence(self, images):
        if "netC" not in self.nets:
            return None, None, None, None
        l1, perc = self.nets["netC"](images)
        return l1[:, :1], l1[:, 1:], perc[:, :1], perc[:, 1:]

    def forward(self, images):
        """(B, 3, H, W) images in [0, 1] -> Decomposition (first B rows as predicted,
        last B with depth and albedo mirrored)."""
        out = Decomposition()
        x = images * 2 - 1
        b = x.shape[0]
        out.input_im = x
        out.canon_depth_raw, out.canon_depth_unclamped, out.canon_depth = self._canonical_depth(x)
        albedo = self.nets["netA"](x)
        out.canon_albedo = torch.cat([albedo, albedo.flip(3)], 0)
        conf = self._confidence(x)
        out.conf_l1, out.conf_l1_flip, out.conf_perc, out.conf_perc_flip = conf
        out.light_a, out.light_b, out.light_d = self._light(x)
        out.canon_im, out.canon_normal, out.canon_diffuse = self.camera.shade(
            out.canon_depth, out.canon_albedo, out.light_a, out.light_b, out.light_d)
        out.view = self._view(x)
        out.recon_depth, recon_im, valid = self.camera.reconstruct(out.canon_depth, out.canon_im, out.view)
        out.later("recon_normal", functools.partial(normals_from_depth, out.recon_depth, self.camera.K))
        mask_both = (valid[:b] * valid[b:]).repeat(2, 1, 1).unsqueeze(1).detach()  # (2B, 1, H, W)
        out.recon_valid = valid
        out.recon_mask = mask_both
        out.recon_im = recon_im * mask_both
        out.losses = self._losses(out, b)
        return out

    def _depth_smoothness(self, depth):
        """Mean |neighbour difference| of canonical depth in units of the depth range."""
        scale = self.cfg["max_depth"] - self.cfg["min_depth"]
        return ((depth[:, :-1, :] - depth[:, 1:, :]) / scale).abs().mean() + \
            ((depth[:, :, :-1] - depth[:, :, 1:]) / scale).abs().mean()

    def _losses(self, out, b):
        cfg = self.cfg
        x, recon, mask = out.input_im, out.recon_im, out.recon_mask
        losses = {
            "l1": photometric_loss(recon[:b], x, mask[:b], out.conf_l1),
            "l1_flip": photometric_loss(recon[b:], x, mask[b:], out.conf_l1_flip),
        }
        total = losses["l1"] + cfg["lam_flip"] * losses["l1_flip"]
        if self.perceptual is not None:
            losses["perc"], losses["perc_flip"] = self.perceptual(
                [recon[:b], recon[b:]], x, [mask[:b], mask[b:]], [out.conf_perc, out.conf_perc_flip])
            total = total + cfg["lam_perc"] * (losses["perc"] + cfg["lam_flip"] * losses["perc_flip"])
        if cfg["lam_depth_sm"]:
            losses["depth_sm"] = self._depth_smoothness(out.canon_depth_unclamped)
            total = total + cfg["lam_depth_sm"] * losses["depth_sm"]
        losses["total"] = total
        return losses

    def to(self, *args, **kwargs):
        module = super(PhotoGeoAutoencoder, self).to(*args, **kwargs)
        device = next(self.parameters()).device
        self.camera.to(device)
        return module

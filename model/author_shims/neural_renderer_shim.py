"""A drop-in `neural_renderer` for the original Unsup3D, backed by model.renderer.

It implements exactly what their renderer.py calls: the constructor with NMR's
'projection' camera (R = I, t = 0, orig_size = image_size) and `render_depth`.
`render_rgb` is only reached by their visualisation / save_results (rotating
videos), which the adapter never calls; it raises a clear error.
Python 3.6 / PyTorch 1.2 compatible.
"""
import torch

from model.renderer import make_renderer

__all__ = ["Renderer"]
__version__ = "repro-dropin"


class Renderer(object):
    def __init__(self, image_size=256, anti_aliasing=True, background_color=(0, 0, 0),
                 fill_back=True, camera_mode="projection", K=None, R=None, t=None,
                 dist_coeffs=None, orig_size=1024, perspective=True, viewing_angle=30,
                 camera_direction=(0, 0, 1), near=0.1, far=100, light_intensity_ambient=0.5,
                 light_intensity_directional=0.5, light_color_ambient=(1, 1, 1),
                 light_color_directional=(1, 1, 1), light_direction=(0, 1, 0)):
        if camera_mode != "projection":
            raise NotImplementedError("drop-in neural_renderer: only camera_mode='projection'")
        if orig_size != image_size:
            raise NotImplementedError("drop-in neural_renderer: orig_size must equal image_size")
        K = torch.as_tensor(K).detach().float().cpu().reshape(-1, 3, 3)
        R = torch.as_tensor(R).detach().float().cpu().reshape(-1, 3, 3)
        t = torch.as_tensor(t).detach().float().cpu().reshape(-1, 3)
        if K.shape[0] != 1 or not torch.equal(R[0], torch.eye(3)) or bool((t != 0).any()):
            raise NotImplementedError("drop-in neural_renderer: one K, R = I, t = 0 only")
        self.image_size = image_size
        self.K, self.R, self.t = K, R, t
        self.background_color = background_color
        self._depth = make_renderer("torch", image_size, K[0], near=near, far=far,
                                    anti_aliasing=anti_aliasing, fill_back=fill_back)

    def render_depth(self, vertices, faces):
        """(B, N, 3) vertices, (B, F, 3) int faces -> (B, S, S) depth (far where empty)."""
        return self._depth.render_depth(vertices, faces)

    def render_rgb(self, vertices, faces, textures):
        raise NotImplementedError("drop-in neural_renderer implements render_depth only; render_rgb "
                                  "is used by their visualize/save_results videos, which the adapter skips")

    def render_silhouettes(self, vertices, faces):
        raise NotImplementedError("drop-in neural_renderer implements render_depth only")

"""torchvision's vgg16().features (all 31 layers), whose first 16 are model.networks.VGG16Features.

Their PerceptualLoss slices features[0:23] (relu1_2 .. relu4_3) and uses relu3_3
only, so layers 16..22 run but never reach the loss. Weights come from a
torchvision vgg16 state dict ('features.N.*'); at least layers 0..15 must be in it.
"""
import torch.nn as nn

from model.networks import VGG16Features, vgg_layers

__all__ = ["VGG16"]

_REST = (512, 512, 512, "M", 512, 512, 512, "M")


class VGG16(nn.Module):
    def __init__(self):
        super(VGG16, self).__init__()
        layers = list(VGG16Features().features) + [nn.MaxPool2d(kernel_size=2, stride=2)]
        self.features = nn.Sequential(*(layers + vgg_layers(_REST, 256)))

    def load_torchvision(self, state_dict):
        own = dict((k, v) for k, v in state_dict.items() if k.startswith("features."))
        missing = [k for k in self.state_dict() if k not in own and int(k.split(".")[1]) < 16]
        if missing:
            raise ValueError("vgg16 state dict lacks %s (layers up to relu3_3 are required)" % missing[0])
        self.load_state_dict(own, strict=False)

    def forward(self, x):
        return self.features(x)

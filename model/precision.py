"""TF32 on CPU, emulated: conv inputs and weights rounded to a 10-bit mantissa.

On Ampere+ GPUs PyTorch (1.7 to 1.11 by default) runs convolutions and matmuls
in TF32: operands keep float32's 8-bit exponent but only 10 mantissa bits.
Rounding the operands of every convolution the same way lets a CPU cell show
what that precision loss alone does to training. Gradients pass straight
through the rounding (as on the GPU, where the backward pass is TF32 too, the
weights themselves stay float32).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["round_to_tf32", "emulate_tf32"]


def _round_tf32(x):
    if x.dtype != torch.float32:
        return x
    bits = x.contiguous().view(torch.int32)
    # round to nearest on the 13 dropped mantissa bits, then drop them
    rounded = (bits + 0x1000) & ~0x1FFF
    return rounded.view(torch.float32)


class _RoundTF32(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return _round_tf32(x)

    @staticmethod
    def backward(ctx, grad):
        return _round_tf32(grad)


def round_to_tf32(x):
    """float32 tensor -> same values at TF32 precision (straight-through gradient)."""
    return _RoundTF32.apply(x)


def _conv2d(self, x):
    return F.conv2d(round_to_tf32(x), round_to_tf32(self.weight), self.bias, self.stride,
                    self.padding, self.dilation, self.groups)


def _conv_transpose2d(self, x, output_size=None):
    return F.conv_transpose2d(round_to_tf32(x), round_to_tf32(self.weight), self.bias, self.stride,
                              self.padding, self.output_padding, self.groups, self.dilation)


def emulate_tf32(module):
    """Make every Conv2d / ConvTranspose2d under `module` compute with TF32 operands."""
    count = 0
    for sub in module.modules():
        if isinstance(sub, nn.ConvTranspose2d):
            sub.forward = _conv_transpose2d.__get__(sub)
            count += 1
        elif isinstance(sub, nn.Conv2d):
            sub.forward = _conv2d.__get__(sub)
            count += 1
    return count

"""TF32 on CPU, emulated: the operands of convolutions and of matmuls rounded to TF32.

On Ampere+ GPUs PyTorch runs convolutions (cuDNN, on by default from 1.7) and matmuls
(cuBLAS, on by default in 1.7-1.11) in TF32: operands keep float32's 8-bit exponent
but only 10 mantissa bits, products are accumulated and returned in float32. The two
switches are separate, and so are the emulations here:

- convolutions (`emulate_tf32_conv`): the forward pass convolves rounded input and
  weight; the backward pass's two convolutions (gradient of the input, of the weight)
  get rounded operands too: the incoming gradient is rounded, and the saved input and
  weight are the rounded ones. Results and the bias stay float32, as on the GPU.
- matmuls (`matmul`, used by model/geometry.py for every projection and rotation):
  rounded operands in the forward pass; in the backward pass the incoming gradient is
  rounded and multiplied with the rounded operands.

Rounding: to nearest, ties to even (IEEE 754's default), on the 13 dropped mantissa
bits; inf and NaN pass unchanged. cuDNN and cuBLAS do not document the conversion they
use (PTX has round-to-nearest-away `cvt.rna.tf32.f32`; the tensor cores truncate raw
float32 bits), so the mode is stated here and tested on bit patterns
(tests/test_precision.py). Python 3.6 / PyTorch 1.2 compatible.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["round_to_tf32", "emulate_tf32_conv", "matmul", "emulate_tf32_matmul", "matmul_mode"]

_DROPPED = 13                      # float32 has 23 mantissa bits, TF32 keeps 10
_HALF = (1 << (_DROPPED - 1)) - 1  # just under half of the dropped range: ties go to the even side
_KEEP = ~((1 << _DROPPED) - 1)


def _round_tf32(x):
    """float32 tensor -> the nearest TF32 value (ties to even), as float32."""
    if x.dtype != torch.float32:
        return x
    bits = x.contiguous().view(torch.int32)
    odd = (bits >> _DROPPED) & 1             # last kept bit: a tie rounds towards it being 0
    rounded = ((bits + _HALF + odd) & _KEEP).view(torch.float32)
    return torch.where(torch.isfinite(x), rounded, x)


class _RoundOperand(torch.autograd.Function):
    """Forward: round to TF32. Backward: the gradient passes unchanged (it is not an op's operand)."""

    @staticmethod
    def forward(ctx, x):
        return _round_tf32(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class _RoundIncomingGradient(torch.autograd.Function):
    """Forward: identity. Backward: the incoming gradient, an operand of the backward ops, rounded."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()  # not a view: the networks' in-place activations may overwrite it

    @staticmethod
    def backward(ctx, grad):
        return _round_tf32(grad)


def round_to_tf32(x):
    """float32 tensor -> same values at TF32 precision (straight-through gradient)."""
    return _RoundOperand.apply(x)


def _tf32_op(op, a, b):
    """op(a, b) with TF32 operands in both passes: a, b rounded going forward, and the gradient
    reaching op rounded going back (the backward ops multiply it with the saved rounded a, b)."""
    return _RoundIncomingGradient.apply(op(round_to_tf32(a), round_to_tf32(b)))


def _conv2d(self, x):
    out = _tf32_op(lambda a, w: F.conv2d(a, w, None, self.stride, self.padding, self.dilation, self.groups),
                   x, self.weight)
    return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def _conv_transpose2d(self, x, output_size=None):
    out = _tf32_op(lambda a, w: F.conv_transpose2d(a, w, None, self.stride, self.padding, self.output_padding,
                                                   self.groups, self.dilation), x, self.weight)
    return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)


def emulate_tf32_conv(module):
    """Make every Conv2d / ConvTranspose2d under `module` compute with TF32 operands; returns how many."""
    count = 0
    for sub in module.modules():
        if isinstance(sub, nn.ConvTranspose2d):
            sub.forward = _conv_transpose2d.__get__(sub)
            count += 1
        elif isinstance(sub, nn.Conv2d):
            sub.forward = _conv2d.__get__(sub)
            count += 1
    return count


# Per process, like the GPU's torch.backends.cuda.matmul.allow_tf32 flag it stands in for.
_MATMUL = {"tf32": False}


def emulate_tf32_matmul(enabled):
    """Switch the TF32 emulation of `matmul` on or off for this process."""
    _MATMUL["tf32"] = bool(enabled)


def matmul_mode():
    """How `matmul` computes now: 'tf32' (emulated) or 'float32', for caches of its results."""
    return "tf32" if _MATMUL["tf32"] else "float32"


def matmul(a, b):
    """a.matmul(b), with TF32 operands in both passes while emulate_tf32_matmul is on."""
    if _MATMUL["tf32"] and a.dtype == torch.float32:
        return _tf32_op(torch.matmul, a, b)
    return a.matmul(b)

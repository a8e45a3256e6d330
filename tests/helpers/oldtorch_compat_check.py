"""Run inside an old-PyTorch image: every model/compat.py shim on real tensors.

Prints one JSON object: the torch version, which path each shim took on this torch,
and whether its result matched a plain reference. tests/test_oldtorch.py runs it in
the cpu-torch1.8 container and asserts on the record. Python 3.6-compatible.
"""
import inspect
import json
import os
import sys
import tempfile

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from model import compat  # noqa: E402


def scatter_min():
    torch.manual_seed(0)
    index = torch.randint(0, 50, (2000,))
    src = torch.randint(-1000, 1000, (2000,))
    out = torch.full((60,), 10 ** 6, dtype=torch.int64)
    got = compat.scatter_min_int64(out.clone(), index, src)
    want = out.clone()
    for i, v in zip(index.tolist(), src.tolist()):
        want[i] = min(int(want[i]), v)
    path = "scatter_reduce_" if hasattr(out, "scatter_reduce_") else "sort fallback"
    return path, bool(torch.equal(got, want))


def nonzero():
    mask = torch.tensor([False, True, True, False, True])
    got = compat.nonzero_indices(mask)
    return "as_tuple", got.tolist() == [1, 2, 4]


def grid_sample():
    torch.manual_seed(0)
    image, grid = torch.rand(2, 3, 8, 8), torch.rand(2, 5, 5, 2) * 2 - 1
    same = all(torch.allclose(compat.grid_sample(image, grid, ac),
                              F.grid_sample(image, grid, mode="bilinear", align_corners=ac))
               for ac in (True, False))
    return "native align_corners", same


def load_checkpoint():
    state = {"rng": torch.get_rng_state(), "step": 7}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.pt")
        torch.save(state, path)
        back = compat.load_checkpoint(path)
    path_taken = "weights_only=False" if "weights_only" in inspect.signature(torch.load).parameters \
        else "no weights_only"
    return path_taken, back["step"] == 7 and torch.equal(back["rng"], state["rng"])


def deterministic():
    compat.set_deterministic(cudnn=True, algorithms=True)
    on = torch.are_deterministic_algorithms_enabled()
    compat.set_deterministic(cudnn=False, algorithms=False)
    off = not torch.are_deterministic_algorithms_enabled()
    has_warn = "warn_only" in inspect.signature(torch.use_deterministic_algorithms).parameters
    return ("with warn_only" if has_warn else "without warn_only"), bool(on and off)


def tf32():
    compat.set_tf32(conv=True, matmul=False)
    conv_only = compat.tf32_flags()
    compat.set_tf32(conv=False, matmul=True)
    matmul_only = compat.tf32_flags()
    compat.set_tf32(conv=False, matmul=False)
    return "allow_tf32", conv_only == {"matmul_allow_tf32": False, "cudnn_allow_tf32": True} and \
        matmul_only == {"matmul_allow_tf32": True, "cudnn_allow_tf32": False}


def cudnn():
    version = compat.cudnn_version()
    return str(version), version is None or isinstance(version, int)


CHECKS = (scatter_min, nonzero, grid_sample, load_checkpoint, deterministic, tf32, cudnn)

if __name__ == "__main__":
    record = {"torch": torch.__version__, "python": sys.version.split()[0]}
    for check in CHECKS:
        path, ok = check()
        record[check.__name__] = {"path": path, "ok": ok}
    print(json.dumps(record))

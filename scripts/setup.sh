#!/usr/bin/env bash
# Set up a fresh machine: a virtualenv in .venv with CPU PyTorch and `repro`, and the
# authors' code for impl=author cells (scripts/fetch_author_code.sh; skipped cells without it).
#
# torch is pinned to 2.13.0 (the CPU wheel this project's machines serve locally);
# an unpinned torch would pull multi-GB CUDA wheels. Override with TORCH_SPEC.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q "${TORCH_SPEC:-torch==2.13.0}"
.venv/bin/pip install -q -e ".[test,docker,ray]"
bash scripts/fetch_author_code.sh
echo "setup: ready: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'), $(.venv/bin/repro --help | head -1)"

#!/usr/bin/env bash
# Build a local Debian bookworm base image without any registry pull.
#
# Why: CI/dev sandboxes cannot reach Docker Hub, so the cpu image is built on a
# rootfs made by debootstrap (Debian mirror only) and imported into the engine.
# Its python3 (3.11) matches the cp311 torch CPU wheel the cpu image installs.
#
# Usage: docker/make-base.sh [IMAGE]     # default IMAGE: repro-base:bookworm
# Skips the work when IMAGE already exists (delete it to force a rebuild).
set -euo pipefail

image="${1:-repro-base:bookworm}"
mirror="${REPRO_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "make-base: $image already exists"
    exit 0
fi

rootfs="$(mktemp -d /tmp/repro-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "make-base: debootstrap bookworm into $rootfs"
# python3-venv: the cpu Dockerfile installs into a venv (PEP 668 forbids system pip).
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >/dev/null
# Trim apt lists and docs: they only grow the image.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
tar -C "$rootfs" -c . | docker import \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "make-base: imported $image"

#!/usr/bin/env bash
# Build a local Debian base image without any registry pull.
#
# Why: CI/dev sandboxes cannot reach Docker Hub, so the stack images are built on a
# rootfs made by debootstrap (Debian mirror only) and imported into the engine.
# The release is the image's tag: bookworm (python3 3.11, the cpu image's cp311
# wheels) or bullseye (python3 3.9, the cpu-torch1.8 image's cp39 wheels).
# `repro images build` uses repro-base:<release> on its own when the Dockerfile's
# default base cannot be pulled.
#
# Usage: docker/make-base.sh [IMAGE]     # default IMAGE: repro-base:bookworm
# Env:   REPRO_DEBIAN_MIRROR (default: the first Debian mirror in this machine's apt
#        sources, so a local mirror or proxy is used; else deb.debian.org)
# Skips the work when IMAGE already exists (delete it to force a rebuild).
set -euo pipefail

image="${1:-repro-base:bookworm}"
release="${image##*:}"

# The machine's own Debian mirror (deb822 "URIs:" or one-line "deb URL suite").
host_mirror() {
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
        2>/dev/null | grep -v '^\s*#' \
        | grep -oE '(URIs:\s*|^deb\s+(\[[^]]*\]\s+)?)[a-z]+://[^ ]*/debian/?(\s|$)' \
        | grep -oE '[a-z]+://[^ ]*' | head -n 1
}
mirror="${REPRO_DEBIAN_MIRROR:-$(host_mirror || true)}"
mirror="${mirror:-http://deb.debian.org/debian}"

case "$release" in
    bookworm|bullseye) ;;
    *) echo "make-base: unknown release '$release' in $image (use repro-base:bookworm or repro-base:bullseye)" >&2
       exit 2 ;;
esac

if docker image inspect "$image" >/dev/null 2>&1; then
    echo "make-base: $image already exists"
    exit 0
fi

rootfs="$(mktemp -d /tmp/repro-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT
echo "make-base: debootstrap $release from $mirror into $rootfs"
# python3-venv: the Dockerfiles install into a venv (PEP 668 forbids system pip on bookworm).
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    "$release" "$rootfs" "$mirror" >/dev/null
# Trim apt lists and docs: they only grow the image.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
tar -C "$rootfs" -c . | docker import \
    -c 'ENV LANG=C.UTF-8' -c 'CMD ["/bin/bash"]' - "$image" >/dev/null
echo "make-base: imported $image"

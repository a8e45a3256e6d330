#!/usr/bin/env bash
# Install and start a Docker engine for the docker tests (CI and dev machines).
#
# Why these flags: the CI/dev sandboxes have no iptables/bridge privileges and no
# registry access, so dockerd runs without its NAT bridge and containers use
# network_mode=none (builds use --network host). Local base images are made from
# a Debian debootstrap rootfs instead of pulled (see docker/README.md).
#
# Usage: docker/setup-engine.sh            # idempotent; returns once `docker info` answers
# Env:   REPRO_DOCKERD_LOG (default /tmp/dockerd.log)
set -euo pipefail

log="${REPRO_DOCKERD_LOG:-/tmp/dockerd.log}"

engine_up() { docker info >/dev/null 2>&1; }

if engine_up; then
    echo "setup-engine: docker engine already running"
    exit 0
fi

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    echo "setup-engine: installing docker.io and debootstrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends docker.io debootstrap >/dev/null
fi

echo "setup-engine: starting dockerd (log: $log)"
# setsid: keep the daemon alive after this script's session ends.
setsid dockerd --iptables=false --bridge=none >"$log" 2>&1 < /dev/null &

for _ in $(seq 1 60); do
    if engine_up; then
        echo "setup-engine: docker engine ready ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 1
done
echo "setup-engine: dockerd did not answer within 60 s; see $log" >&2
tail -n 20 "$log" >&2
exit 1

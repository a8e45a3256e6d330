#!/bin/sh
# Install torchvision's VGG16 ImageNet weights (the perceptual loss of the paper preset) as
# DEST/NAME, linked from DEST/vgg16.pth (the fixed path the images name in REPRO_VGG_WEIGHTS),
# and verify them: torchvision names its files vgg16-<first hex digits of sha256>.pth, so the
# name carries the hash the content must have.
# A copy named NAME already in DEST (the Dockerfiles COPY docker/vgg16-*.pth there) is used
# as is; otherwise NAME is downloaded from $VGG16_BASE_URL (default: PyTorch's model store).
# --optional: when NAME can be neither found nor downloaded, install nothing and say so
# (cpu-torch1.8, a CPU stack first, must build offline); a hash mismatch always fails.
# Usage: fetch-vgg.sh [--optional] DEST [NAME]   (NAME: vgg16-397923af.pth)
set -eu
optional=no
if [ "${1:-}" = "--optional" ]; then
    optional=yes
    shift
fi
dest=$1
name=${2:-vgg16-397923af.pth}
python3 - "$dest" "$name" "$optional" "${VGG16_BASE_URL:-https://download.pytorch.org/models}" <<'PY'
import hashlib, os, re, socket, sys, urllib.request
dest, name, optional, base = sys.argv[1], sys.argv[2], sys.argv[3] == "yes", sys.argv[4]
match = re.match(r"^vgg16-([0-9a-f]{8,64})\.pth$", name)
if not match:
    sys.exit("fetch-vgg.sh: %s: expected torchvision's file name vgg16-<sha256 prefix>.pth" % name)
if not os.path.isdir(dest):
    os.makedirs(dest)
path = os.path.join(dest, name)
if os.path.isfile(path):
    origin = "the build context"
else:
    url = base.rstrip("/") + "/" + name
    socket.setdefaulttimeout(60)  # a firewall that drops packets must not hang the build
    try:
        urllib.request.urlretrieve(url, path + ".part")
    except (OSError, ValueError) as e:  # URLError and timeouts are OSErrors
        if os.path.exists(path + ".part"):
            os.remove(path + ".part")
        fix = "put %s into docker/ (from a machine that reaches %s) and build again" % (name, base)
        if not optional:
            sys.exit("fetch-vgg.sh: cannot download %s (%s): %s" % (url, e, fix))
        print("fetch-vgg.sh: WARNING: no VGG16 weights in this image: cannot download %s (%s); cells "
              "with vgg_weights: image run without the perceptual loss. To add them: %s" % (url, e, fix))
        sys.exit(0)
    os.rename(path + ".part", path)
    origin = url
sha = hashlib.sha256()
with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        sha.update(block)
if not sha.hexdigest().startswith(match.group(1)):
    os.remove(path)
    sys.exit("fetch-vgg.sh: %s (%s): sha256 %s does not start with %s; refusing it"
             % (name, origin, sha.hexdigest(), match.group(1)))
link = os.path.join(dest, "vgg16.pth")
if os.path.lexists(link):
    os.remove(link)
os.symlink(name, link)
print("fetch-vgg.sh: %s from %s verified (sha256 %s...), installed as %s"
      % (name, origin, sha.hexdigest()[:12], link))
PY

#!/bin/sh
# Fetch torchvision's VGG16 ImageNet weights (the perceptual loss of the paper preset) into
# DEST and verify them: torchvision names its files <arch>-<first hex digits of sha256>.pth,
# so the name carries the hash the content must have. Shared by the CUDA Dockerfiles.
# Usage: fetch-vgg.sh DEST [URL]   (URL may be file:// for a local copy behind a firewall)
set -eu
dest=$1
url=${2:-https://download.pytorch.org/models/vgg16-397923af.pth}
python3 - "$url" "$dest" <<'PY'
import hashlib, os, re, sys, urllib.request
url, dest = sys.argv[1], sys.argv[2]
name = url.rstrip("/").rsplit("/", 1)[-1]
match = re.match(r"^vgg16-([0-9a-f]{8,64})\.pth$", name)
if not match:
    sys.exit("fetch-vgg.sh: %s: expected torchvision's file name vgg16-<sha256 prefix>.pth" % name)
if not os.path.isdir(dest):
    os.makedirs(dest)
part = os.path.join(dest, name + ".part")
urllib.request.urlretrieve(url, part)
sha = hashlib.sha256()
with open(part, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        sha.update(block)
if not sha.hexdigest().startswith(match.group(1)):
    os.remove(part)
    sys.exit("fetch-vgg.sh: %s: sha256 %s does not start with %s; refusing it" % (url, sha.hexdigest(), match.group(1)))
os.rename(part, os.path.join(dest, name))
print("fetch-vgg.sh: %s verified (sha256 %s...)" % (name, sha.hexdigest()[:12]))
PY

#!/bin/sh
# Check out the original authors' code (elliottwu/unsup3d) at one commit into DEST
# and verify it: git checks content against the hash, and HEAD must be COMMIT.
# Shared by the CUDA Dockerfiles (impl=author); never edits their code.
# Usage: fetch-author.sh COMMIT DEST [REPO_URL]
set -eu
commit=$1
dest=$2
url=${3:-https://github.com/elliottwu/unsup3d.git}
git init -q "$dest"
cd "$dest"
git remote add origin "$url"
git fetch -q --depth 1 origin "$commit"
git checkout -q --detach FETCH_HEAD
test "$(git rev-parse HEAD)" = "$commit"
echo "$commit" > COMMIT

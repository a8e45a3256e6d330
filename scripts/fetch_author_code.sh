#!/usr/bin/env bash
# The authors' code (elliottwu/unsup3d) for impl=author cells, at the pinned commit, into
# third_party/unsup3d (git-ignored), unless a checkout is configured: $REPRO_AUTHOR_CODE_DIR
# or ../shared/third_party/unsup3d (model/author_code.py looks in that order, after the cell's
# author_code_dir). docker/fetch-author.sh fetches and verifies the commit (git checks the
# content against it); a failed fetch (no network) leaves nothing and is not an error:
# `repro run` then lists the impl=author cells as skipped, with the reason.
# $REPRO_AUTHOR_REPO names another remote (a mirror) to fetch the same commit from.
set -uo pipefail
cd "$(dirname "$0")/.."
read -r repo commit fetched shared < <(python3 -c 'import sys; sys.path.insert(0, ".")
from model.author_code import AUTHOR_COMMIT, AUTHOR_REPO, FETCHED_DIR, SHARED_DIR
print(AUTHOR_REPO, AUTHOR_COMMIT, FETCHED_DIR, SHARED_DIR)')
say() { echo "setup: authors' code: $*"; }

if [ -n "${REPRO_AUTHOR_CODE_DIR:-}" ]; then
  say "\$REPRO_AUTHOR_CODE_DIR=$REPRO_AUTHOR_CODE_DIR"
elif [ -d "$fetched" ]; then
  head=$(git -C "$fetched" rev-parse HEAD 2>/dev/null)
  if [ "$head" = "$commit" ]; then say "$fetched at $commit"
  else say "$fetched is at '${head:-no git commit}', not the pinned $commit: remove it and run setup again"; fi
elif [ -f "$shared/unsup3d/model.py" ]; then
  say "$shared"
else
  mkdir -p "$(dirname "$fetched")"
  tmp=$(mktemp -d "$(dirname "$fetched")/.unsup3d-XXXXXX")
  repo=${REPRO_AUTHOR_REPO:-$repo}
  if err=$(timeout 300 sh docker/fetch-author.sh "$commit" "$tmp/unsup3d" "$repo" 2>&1); then
    mv "$tmp/unsup3d" "$fetched" && say "fetched $repo at $commit into $fetched"
  else
    say "not fetched ($(echo "$err" | tail -1)); impl=author cells will be skipped with that reason"
  fi
  rm -rf "$tmp"
  rmdir "$(dirname "$fetched")" 2>/dev/null  # left only when the fetch failed and it was empty
fi
exit 0

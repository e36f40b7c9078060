#!/usr/bin/env bash
# The source tree as the package builds see it: the files git tracks plus new
# files that are not ignored (so uncommitted work is tested too), never build
# directories.
#   pkg-source.sh hash SRC        prints a hash of those files' names and contents
#   pkg-source.sh copy SRC DEST   copies them to DEST (created)
set -euo pipefail
mode=$1 src=$2

list() {
  if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Deleted-but-tracked files are listed by git; keep only what exists.
    git -C "$src" ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
      [ -e "$src/$f" ] && printf '%s\0' "$f"
    done
  else
    (cd "$src" && find . -path ./.git -prune -o -path './build*' -prune -o -path './obj-*' -prune \
       -o -type f -printf '%P\0')
  fi
}

case "$mode" in
  hash) (cd "$src" && list | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16 ;;
  copy)
    dest=$3
    mkdir -p "$dest"
    (cd "$src" && list | tar --null -T - -cf -) | tar -xf - -C "$dest"
    ;;
  *) echo "usage: $0 hash|copy SRC [DEST]" >&2; exit 2 ;;
esac

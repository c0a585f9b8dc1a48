#!/usr/bin/env bash
# Fetches Fashion-MNIST (Debian's package dataset-fashion-mnist, ~31 MB, the original gzipped IDX
# files) into .tools/fashion-mnist/ inside the checkout, with no root needed: `apt-get download`
# fetches the .deb using the machine's configured archives and `dpkg -x` unpacks it; nothing is
# installed system-wide. Idempotent: returns at once when the four files are already there.
#
# Usage: scripts/fetch-fashion-mnist.sh [destination]   (default: <repo>/.tools/fashion-mnist)
# Prints the folder holding the IDX files on its last line.
# (Alternative, as root: `apt-get install -y dataset-fashion-mnist`, files in /usr/share/datasets/fashion-mnist.)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/.tools/fashion-mnist}
datadir=$dest/usr/share/datasets/fashion-mnist
files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

complete() {
  for f in "${files[@]}"; do [ -s "$datadir/$f" ] || return 1; done
}
if complete; then
  echo "$datadir"
  exit 0
fi

for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "fetch-fashion-mnist: $tool not found (a Debian system is needed)" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-fashion-mnist: apt-get download dataset-fashion-mnist -> $dest" >&2
if ! (cd "$tmp" && apt-get -qq download dataset-fashion-mnist >&2); then
  # A fresh machine may have no package lists yet; refresh them when allowed, then try once more.
  if [ "$(id -u)" -eq 0 ] && apt-get -qq update >&2 && (cd "$tmp" && apt-get -qq download dataset-fashion-mnist >&2); then
    :
  else
    echo "fetch-fashion-mnist: apt-get download failed; the package lists may be stale: run 'apt-get update' (as root) and retry" >&2
    exit 1
  fi
fi

rm -rf "$dest.partial"
mkdir -p "$dest.partial"
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$dest.partial"; done
rm -rf "$dest"
mv "$dest.partial" "$dest"

if ! complete; then
  echo "fetch-fashion-mnist: the package did not contain the four IDX files in $datadir" >&2
  exit 1
fi
echo "$datadir"

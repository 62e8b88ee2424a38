#!/usr/bin/env bash
# Stages the tree the container image carries at /opt/nodemesh (IMAGE_ROOT in
# installer/manifests/node-daemonset.ts) from a built checkout (`make build`):
# dist/ without tests, the eBPF objects, the native addon, the CRDs, the identity proto,
# the sample app's launcher and production node_modules only.
#   installer/image/stage.sh DEST        (`make image-root` runs it after `make build`)
set -euo pipefail
dest=${1:?usage: installer/image/stage.sh DEST}
cd "$(dirname "$0")/../.."
for f in dist/daemon/main.js bpf/build/capture.bpf.o native/build/Release/nodemesh_native.node node_modules/.package-lock.json; do
  [ -e "$f" ] || { echo "stage.sh: $f is missing: run 'make build' first" >&2; exit 1; }
done
rm -rf "$dest"
mkdir -p "$dest/bpf/build" "$dest/native/build/Release" "$dest/daemon/identity" "$dest/installer"
cp package.json package-lock.json "$dest/"
cp -r dist "$dest/dist"
rm -rf "$dest/dist/test"
find "$dest/dist" -name '*.test.js' -delete -o -name '*.test.js.map' -delete
cp bpf/build/*.bpf.o "$dest/bpf/build/"
cp native/build/Release/nodemesh_native.node "$dest/native/build/Release/"
cp -r daemon/identity/proto "$dest/daemon/identity/"
cp -r installer/crds installer/bin "$dest/installer/"
cp -r node_modules "$dest/"
(cd "$dest" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)

#!/usr/bin/env bash
# Build build/cellbench-debian.sif from containers/cellbench-debian.def on this machine.
#
#   containers/build-image.sh [PYTHON]
#
# 1. .wheelhouse/: `pip download` of cellbench's requirements and the CPU torch, at the
#    versions installed in PYTHON's environment (default .venv/bin/python), so the image runs
#    the same library versions as the tests outside it.
# 2. The image, built with no network but Debian's archive (the mirror of this machine's apt
#    sources): with `apptainer` when it is on PATH, else with containers/apptainer-here.sh.
# Prints the image's path, size and SHA-256.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-.venv/bin/python}
IMAGE=build/cellbench-debian.sif
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if command -v apptainer > /dev/null; then
  APPTAINER=(apptainer)
else
  APPTAINER=(containers/apptainer-here.sh)
fi
mirror=$(bash containers/apptainer-here.sh mirror)

start=$(date +%s)
mkdir -p .wheelhouse build
"$PYTHON" -m pip freeze --exclude-editable | grep -v '^cellbench' > build/constraints.txt
"$PYTHON" -m pip download --quiet --disable-pip-version-check -d .wheelhouse \
  -c build/constraints.txt "$TORCH_SPEC" pip setuptools wheel .
echo "wheelhouse: $(du -sh .wheelhouse | cut -f1) in $(($(date +%s) - start)) s" >&2

rm -f "$IMAGE.partial"
"${APPTAINER[@]}" build --force --fakeroot --build-arg "mirror=$mirror" \
  "$IMAGE.partial" containers/cellbench-debian.def > build/image-build.log 2>&1 || {
  tail -n 30 build/image-build.log >&2
  exit 1
}
mv "$IMAGE.partial" "$IMAGE"
echo "image: $IMAGE $(du -h "$IMAGE" | cut -f1) sha256 $(sha256sum "$IMAGE" | cut -d' ' -f1)" \
  "built in $(($(date +%s) - start)) s" >&2
echo "$PWD/$IMAGE"

#!/usr/bin/env bash
# Install cellbench and its extras into a Python environment. One script for every place that
# installs it: `make` (the .venv), CI, and the Apptainer image (containers/cellbench.def), so
# that CI checks what the image installs.
#
#   scripts/install.sh PYTHON [--torch SPEC | --no-torch] [--extras all,dev] [--editable]
#
# --torch SPEC   install this torch first (default torch==2.13.0, a CPU build on the dev
#                machines), so that pip does not pull a multi-GB CUDA build on a CPU machine
# --no-torch     keep the torch already in the environment (a CUDA base image has one)
# --extras LIST  extras of setup.cfg to install (default all,dev; none: cellbench alone)
# --editable     install in development mode (pip install -e)
set -euo pipefail

if [ $# -lt 1 ]; then
  sed -n '2,14p' "$0" >&2
  exit 2
fi
PYTHON=$1
shift
TORCH_SPEC="torch==2.13.0"
EXTRAS="all,dev"
EDITABLE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --torch) TORCH_SPEC=$2; shift 2 ;;
    --no-torch) TORCH_SPEC=""; shift ;;
    --extras) EXTRAS=$2; shift 2 ;;
    --editable) EDITABLE="-e"; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
"$PYTHON" -m pip install --quiet --upgrade pip
if [ -n "$TORCH_SPEC" ]; then
  "$PYTHON" -m pip install --quiet "$TORCH_SPEC"
fi
if [ -z "$EXTRAS" ] || [ "$EXTRAS" = none ]; then
  "$PYTHON" -m pip install --quiet $EDITABLE "$ROOT"
else
  "$PYTHON" -m pip install --quiet $EDITABLE "$ROOT[$EXTRAS]"
fi
"$PYTHON" -c "import cellbench, torch; print('cellbench', cellbench.__version__, 'with torch', torch.__version__)"

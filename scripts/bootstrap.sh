#!/usr/bin/env bash
# Installs the project-local Python environment that provides libtorch (the PyPI `torch` wheel)
# and numpy (used only by the PyTorch parity fixtures and the benchmark baseline).
# Idempotent and quiet when everything is already in place.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
torch_version="2.13.0"

check() {
  "$venv/bin/python" - "$torch_version" <<'PY' 2>/dev/null
import sys
import numpy, torch
sys.exit(0 if torch.__version__.split("+")[0] == sys.argv[1] else 1)
PY
}

if [ -x "$venv/bin/python" ] && check; then
  exit 0
fi
echo "bootstrap: installing torch==$torch_version into $venv (first run only; about 5 GB)" >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "torch==$torch_version" numpy
check || { echo "bootstrap: torch $torch_version did not install correctly into $venv" >&2; exit 1; }
echo "bootstrap: done" >&2

#!/usr/bin/env bash
# Set up rnnperf on a fresh machine: OpenBLAS for PyTensor's C backend, a venv, the package.
#
#   scripts/bootstrap.sh            core + test tools
#   scripts/bootstrap.sh all        also torch (CPU wheel): the torch peer and pytensor-pytorch
#
# Idempotent: a second run only checks. Never fails for a missing OpenBLAS: PyTensor then
# runs without BLAS (about 3.5x slower) and every result records what was linked.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-test}"
PYTHON="${PYTHON:-python3}"

if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing libopenblas-dev (BLAS for PyTensor's C backend)" >&2
        (apt-get install -y -qq libopenblas-dev >/dev/null 2>&1 ||
         (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libopenblas-dev >/dev/null 2>&1)) ||
            echo "bootstrap: could not install libopenblas-dev; PyTensor C will run without BLAS" >&2
    else
        echo "bootstrap: no OpenBLAS and no root apt-get; PyTensor C will run without BLAS" >&2
    fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
if [ "$extras" = all ]; then
    # torch==2.13.0 first: a CPU wheel; a bare `torch` requirement pulls a multi-GB CUDA build.
    .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[all]"
else
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
fi
echo "bootstrap: ready ($(.venv/bin/python --version), extras: $extras)" >&2

#!/usr/bin/env bash
# Set up rnnperf on a fresh machine: OpenBLAS for PyTensor's C backend, a venv, the package.
#
#   scripts/bootstrap.sh            core + test tools
#   scripts/bootstrap.sh all        also torch (CPU wheel): the torch peer and pytensor-pytorch
#   scripts/bootstrap.sh gpu        a GPU box with network: CUDA 12 builds of torch and JAX, then
#                                   everything `all` installs (then: scripts/gpu-check.sh)
#   scripts/bootstrap.sh MODE --dry-run   print the commands, run nothing
#
# gpu: torch==2.13.0+cu126 from download.pytorch.org/whl/cu126 and jax[cuda12] (JAX's CUDA
# plugin, PJRT and the nvidia-*-cu12 wheels: cuDNN, cuBLAS, ptxas...), ~3-4 GB in all. CUDA 12
# because it runs on NVIDIA drivers >= 525 (what most clusters have); CUDA 13 builds need >= 580,
# and PyPI's default Linux torch 2.13.0 is one (cuda-toolkit 13.0), hence the explicit index.
# RNNPERF_CUDA=13 picks torch cu130 and jax[cuda13] instead. The JAX already in the venv keeps
# its version (the plugin must match jaxlib exactly); a fresh venv gets pip's choice in
# pyproject's range.
#
# Idempotent: a second run only checks. Never fails for a missing OpenBLAS: PyTensor then
# runs without BLAS (about 3.5x slower) and every result records what was linked.
set -euo pipefail
# the header above, without its "# "
help() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
CUDA_MAJOR="${RNNPERF_CUDA:-12}"
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

extras=test dry=0
for arg in "$@"; do
    case "$arg" in
        --dry-run) dry=1 ;;
        -h|--help) help; exit 0 ;;
        test|all|gpu|torch|jax|dask) extras="$arg" ;;
        *) echo "bootstrap: unknown mode '$arg' (test, all, gpu; --dry-run)" >&2; exit 2 ;;
    esac
done
cd "$(dirname "$0")/.."

run() {  # print the command under --dry-run, else run it
    if [ "$dry" = 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

case "$CUDA_MAJOR" in
    12) torch_tag=cu126 jax_extra=cuda12 min_driver=525 ;;
    13) torch_tag=cu130 jax_extra=cuda13 min_driver=580 ;;
    *) echo "bootstrap: RNNPERF_CUDA=$CUDA_MAJOR: must be 12 or 13" >&2; exit 2 ;;
esac

if [ "$extras" = gpu ] && command -v nvidia-smi >/dev/null; then
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n1)
    if [ -n "$driver" ] && [ "${driver%%.*}" -lt "$min_driver" ] 2>/dev/null; then
        echo "bootstrap: NVIDIA driver $driver is older than $min_driver, which CUDA" \
             "$CUDA_MAJOR builds need; update the driver (RNNPERF_CUDA=12 needs >= 525)" >&2
        exit 3
    fi
    echo "bootstrap: NVIDIA driver ${driver:-?}: installing CUDA $CUDA_MAJOR builds" >&2
elif [ "$extras" = gpu ]; then
    echo "bootstrap: no nvidia-smi here; installing the CUDA $CUDA_MAJOR builds anyway" >&2
fi

if ! ldconfig -p 2>/dev/null | grep -q 'libopenblas\.so '; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "bootstrap: installing libopenblas-dev (BLAS for PyTensor's C backend)" >&2
        if [ "$dry" = 1 ]; then
            run apt-get install -y -qq libopenblas-dev
        else
            (apt-get install -y -qq libopenblas-dev >/dev/null 2>&1 ||
             (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq libopenblas-dev \
                >/dev/null 2>&1)) ||
                echo "bootstrap: could not install libopenblas-dev; PyTensor C will run" \
                     "without BLAS" >&2
        fi
    else
        echo "bootstrap: no OpenBLAS and no root apt-get; PyTensor C will run without BLAS" >&2
    fi
fi

[ -x .venv/bin/python ] || run "$PYTHON" -m venv .venv
run "${PIP[@]}" --upgrade pip
case "$extras" in
    all)
        # torch==2.13.0 first: a CPU wheel here; a bare `torch` requirement pulls a CUDA build.
        run "${PIP[@]}" "torch==$TORCH_VERSION"
        run "${PIP[@]}" -e ".[all]" ;;
    gpu)
        # The CUDA build of torch from PyTorch's own index (the +cuNNN local version, so no CPU
        # wheel or PyPI's CUDA 13 build can stand in for it), with its pinned nvidia-* wheels.
        run "${PIP[@]}" --index-url "https://download.pytorch.org/whl/$torch_tag" \
            "torch==$TORCH_VERSION+$torch_tag"
        # JAX's CUDA plugin at exactly the installed jax's version; pip keeps torch's nvidia-*
        # pins where they satisfy the plugin's lower bounds (they do: cuDNN 9, cuBLAS 12).
        jax_version=$(.venv/bin/python -c \
            'import importlib.metadata as m; print(m.version("jax"))' 2>/dev/null || true)
        run "${PIP[@]}" "jax[$jax_extra]${jax_version:+==$jax_version}"
        run "${PIP[@]}" -e ".[all]" ;;
    *)
        run "${PIP[@]}" -e ".[$extras]" ;;
esac
if [ "$dry" = 1 ]; then
    echo "bootstrap: dry run (extras: $extras); nothing installed" >&2
else
    echo "bootstrap: ready ($(.venv/bin/python --version), extras: $extras)" >&2
fi

#!/usr/bin/env bash
# Prepare a folder of wheels for `scripts/gpu-check.sh --wheels DIR` on a GPU box without network.
#
#   scripts/gpu-wheels.sh DIR [--python X.Y]... [--dry-run]
#
# Run it where there is network; copy DIR and the checkout to the GPU box. For each Python
# (default: 3.12 and this machine's Python; --python replaces the list) it resolves what rnnperf
# and pytest need on manylinux x86-64 (pip install --dry-run --report with --python-version,
# --platform, --only-binary=:all:), keeps what a Python that already has CUDA torch and JAX
# lacks, writes DIR/requirements-X.Y.txt (name==version) and downloads those wheels into DIR.
#
# Left out, and why: torch, triton, jax, jaxlib, jax-cuda*, nvidia-*, cuda-* (the GPU box's own:
# gpu-check never replaces them); numpy, scipy, ml_dtypes, opt_einsum (torch and JAX bring them);
# numba and llvmlite (~60 MB a Python: only pytensor-numba, a CPU engine, needs them; PyTensor's
# JAX and PyTorch backends never import Numba); matplotlib and what only it needs (`rnnperf plot`
# alone). So DIR is PyTensor and its pure-Python needs, rich, jsonschema, psutil, threadpoolctl,
# flatbuffers, pytest and setuptools (rnnperf's build backend): it must stay under 60 MB, and the
# script says its size and exits 1 past that. Exit 2: bad usage (DIR missing).
set -euo pipefail
# the header above, without its "# "
help() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

LIMIT_MB=60
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)
usage() { echo "usage: scripts/gpu-wheels.sh DIR [--python X.Y]... [--dry-run]" >&2; exit 2; }

dir="" dry=0 pythons=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        --python) [ $# -ge 2 ] || usage; pythons+=("$2"); shift ;;
        -h|--help) help; exit 0 ;;
        -*) echo "gpu-wheels: unknown option '$1'" >&2; usage ;;
        *) [ -z "$dir" ] || usage; dir=$1 ;;
    esac
    shift
done
if [ -z "$dir" ]; then
    echo "gpu-wheels: no DIR given: the folder to fill with wheels for gpu-check.sh --wheels" >&2
    usage
fi
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac     # DIR as given, before the cd below
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
for v in ${pythons[@]+"${pythons[@]}"}; do
    [[ "$v" =~ ^3\.[0-9]+$ ]] || { echo "gpu-wheels: --python $v: expected X.Y, e.g. 3.12" >&2
                                   exit 2; }
done
if [ ${#pythons[@]} = 0 ]; then
    here=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    pythons=(3.12)
    [ "$here" = 3.12 ] || pythons+=("$here")
fi

# rnnperf's own requirements (pyproject.toml), pytest for the gpu tests, setuptools to build it
mapfile -t requirements < <("$PYTHON" -c 'import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
requirements+=("pytest>=8" "setuptools>=77")

target_options() {  # pip's options for a wheel-only resolution for Python $1 on manylinux x86-64
    local p
    printf -- '--only-binary=:all:\n--python-version\n%s\n' "$1"
    for p in "${PLATFORMS[@]}"; do printf -- '--platform\n%s\n' "$p"; done
}

keep() {  # report.json X.Y out.txt REQUIREMENT...: what the report resolved, less the left-out
    "$PYTHON" - "$@" <<'EOF'
import json, re, sys
try:
    from packaging.requirements import Requirement
except ImportError:                       # pip always carries its own copy
    from pip._vendor.packaging.requirements import Requirement

LEFT_OUT = {"torch", "triton", "jax", "jaxlib", "numpy", "scipy", "ml-dtypes", "opt-einsum",
            "numba", "llvmlite", "matplotlib"}
PREFIXES = ("nvidia-", "jax-cuda", "jax-rocm", "cuda-")
report, version, out, *roots = sys.argv[1:]
norm = lambda name: re.sub(r"[-_.]+", "-", name).lower()
left_out = lambda name: name in LEFT_OUT or name.startswith(PREFIXES)
env = {"python_version": version, "python_full_version": version + ".0", "extra": ""}
resolved = {norm(i["metadata"]["name"]): i["metadata"] for i in json.load(open(report))["install"]}

def needs(requirement):
    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate(env):
        return None
    return norm(req.name)

todo = [n for n in map(needs, roots) if n and not left_out(n)]
kept = set()
while todo:                               # walk from the roots, never through a left-out package
    name = todo.pop()
    if name in kept or name not in resolved:
        continue
    kept.add(name)
    for dep in resolved[name].get("requires_dist") or []:
        dep = needs(dep)
        if dep and not left_out(dep):
            todo.append(dep)
lines = sorted(f"{resolved[n]['name']}=={resolved[n]['version']}" for n in kept)
open(out, "w").write("\n".join(lines) + "\n")
print(f"gpu-wheels: Python {version}: {len(lines)} packages; left out: "
      f"{', '.join(sorted(n for n in resolved if n not in kept))}", file=sys.stderr)
EOF
}

run() {  # print the command (always), run it unless --dry-run
    printf '+ %s\n' "$*"
    [ "$dry" = 1 ] || "$@"
}

pip=("$PYTHON" -m pip --disable-pip-version-check)
run mkdir -p "$dir"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
for v in "${pythons[@]}"; do
    mapfile -t target < <(target_options "$v")
    run "${pip[@]}" install --dry-run --ignore-installed --quiet --report "$report" "${target[@]}" \
        "${requirements[@]}"
    echo "+ keep what the report resolved, less the left-out -> $dir/requirements-$v.txt"
    [ "$dry" = 1 ] || keep "$report" "$v" "$dir/requirements-$v.txt" "${requirements[@]}"
    run "${pip[@]}" download --quiet --no-deps "${target[@]}" --dest "$dir" \
        -r "$dir/requirements-$v.txt"
done
[ "$dry" = 0 ] || exit 0
read -r count size_mb < <("$PYTHON" - "$dir" <<'EOF'
import pathlib, sys
wheels = list(pathlib.Path(sys.argv[1]).glob("*.whl"))   # bytes to carry, not disk blocks
print(len(wheels), "%.1f" % (sum(w.stat().st_size for w in wheels) / 2 ** 20))
EOF
)
if awk -v s="$size_mb" -v l="$LIMIT_MB" 'BEGIN { exit !(s > l) }'; then
    echo "gpu-wheels: $dir is $size_mb MB ($count wheels), over the $LIMIT_MB MB limit" >&2
    exit 1
fi
echo "gpu-wheels: $dir: $count wheels, $size_mb MB, for Python ${pythons[*]}; on the GPU box:" \
     "scripts/gpu-check.sh --wheels $dir"

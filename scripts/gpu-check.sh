#!/usr/bin/env bash
# shellcheck disable=SC2329  # the phase functions are called by name, through phase()
# Prove rnnperf's GPU path on a machine with an NVIDIA GPU, in one command (each phase's time on
# an H200 is in docs/notes/performance.md, "First GPU run").
#
#   scripts/gpu-check.sh                  uses .venv (made by scripts/bootstrap.sh gpu)
#   scripts/gpu-check.sh --wheels DIR     no network: a venv on top of this machine's own Python
#                                         (CUDA torch and JAX already installed), the rest from
#                                         the wheels in DIR (made by scripts/gpu-wheels.sh DIR)
#   scripts/gpu-check.sh --dry-run        print the phases and their commands, run nothing
#   options: --venv PATH (for --wheels; default .venv-gpu), --only PHASE[,PHASE] (rerun some of
#            install, tests, parity, bench, tune; detect always runs), --timeout S (per worker,
#            120), --out-dir DIR (where the files go; default gpu-results), --tune-budget D
#            (the tune's --budget, default 3m)
#
# Phases, each timed: detect (nvidia-smi, torch.cuda), install (--wheels only), tests (pytest -m
# gpu tests/test_gpu.py), parity (rnnperf parity --flags device=cuda --engines all), bench (torch
# on cuDNN, jax, pytensor-jax, pytensor-pytorch on cuda at RW and Small, train and forward,
# float32 at matmul_precision=float32 and =tf32), table, tune (rnnperf tune --space gpu at RW,
# train, under --tune-budget). Results: gpu-results/<date>.json, its Markdown table <date>.md,
# the parity matrix <date>-parity.json, the tune's winner <date>.theanorc and its sweep
# <date>.sweep.json; the last line says where to copy them. Exit: 0 all passed, 1 a check failed, 2 bad usage, 3 no GPU here (one line).
#
# Why a venv with --system-site-packages for --wheels: it sees the machine's torch, JAX and their
# CUDA libraries as they are, while pip writes only into the venv; and each missing package is
# installed with --no-deps from DIR (--no-index), so pip never resolves, upgrades or replaces
# torch, jax, jaxlib or an nvidia-* library (DIR holds none of them anyway).
set -euo pipefail
# the header above, without its "# "
help() { awk 'NR > 2 && /^#/ { sub(/^# ?/, ""); print; next } NR > 2 { exit }' "$0"; }

RW=T=100,B=32,I=128,H=256 SMALL=T=100,B=1,I=16,H=32
BENCH_ENGINES=(torch jax pytensor-jax pytensor-pytorch)
PRECISIONS=(float32 tf32)
wheels="" venv=.venv-gpu dry=0 only="install,tests,parity,bench,tune" worker_timeout=120
out_dir=gpu-results tune_budget=3m

usage() { echo "usage: scripts/gpu-check.sh [--dry-run] [--wheels DIR] [--venv PATH]" \
               "[--only PHASES] [--timeout S] [--out-dir DIR] [--tune-budget D]" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry=1 ;;
        --wheels) [ $# -ge 2 ] || usage; wheels=$2; shift ;;
        --venv) [ $# -ge 2 ] || usage; venv=$2; shift ;;
        --only) [ $# -ge 2 ] || usage; only=$2; shift ;;
        --timeout) [ $# -ge 2 ] || usage; worker_timeout=$2; shift ;;
        --out-dir) [ $# -ge 2 ] || usage; out_dir=$2; shift ;;
        --tune-budget) [ $# -ge 2 ] || usage; tune_budget=$2; shift ;;
        -h|--help) help; exit 0 ;;
        *) echo "gpu-check: unknown argument '$1'" >&2; usage ;;
    esac
    shift
done
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }  # before the cd below
[ -z "$wheels" ] || wheels=$(absolute "$wheels")
[ "$venv" = .venv-gpu ] || venv=$(absolute "$venv")
[ "$out_dir" = gpu-results ] || out_dir=$(absolute "$out_dir")
cd "$(dirname "$0")/.."
case "$worker_timeout" in
    ''|*[!0-9]*|0) echo "gpu-check: --timeout $worker_timeout: whole seconds > 0" >&2; exit 2 ;;
esac
for p in ${only//,/ }; do
    case "$p" in install|tests|parity|bench|tune) ;;
        *) echo "gpu-check: --only $only: phases are install, tests, parity, bench, tune" >&2
           exit 2 ;;
    esac
done
if [ -n "$wheels" ] && [ "$dry" = 0 ] && [ ! -d "$wheels" ]; then
    echo "gpu-check: --wheels $wheels: no such directory (make it with scripts/gpu-wheels.sh)" >&2
    exit 2
fi
if [ -n "$wheels" ]; then
    base_python="${PYTHON:-python3}" py="$venv/bin/python"
else
    base_python="${PYTHON:-.venv/bin/python}" py="${PYTHON:-.venv/bin/python}"
fi
stamp=$(date -u +%Y-%m-%dT%H%M%SZ)
results="$out_dir/$stamp.json"
timings=() codes=()

wants() { [[ ",$only," == *",$1,"* ]]; }
now() { date +%s.%N; }    # not $EPOCHREALTIME: bash 5 only, and its decimal point is the locale's
since() { awk -v a="$1" -v b="$(now)" -v f="${2:-%.1f}" 'BEGIN { printf f, b - a }'; }

run() {  # print the command (always), run it unless --dry-run
    printf '+ %s\n' "$*"
    [ "$dry" = 1 ] || "$@"
}

phase() {  # phase NAME FUNCTION: run it, time it, keep its exit code
    local name=$1 start rc=0 took
    echo "== gpu-check: phase $name"
    start=$(now)
    "$2" || rc=$?
    took=$(since "$start")
    timings+=("$name ${took} s")
    codes+=("$rc")
    echo "== gpu-check: phase $name took ${took} s (exit $rc)"
}

no_gpu() { echo "gpu-check: no GPU here: $1; nothing to check" >&2; exit 3; }

torch_verdict() {  # empty when torch sees a CUDA device, else why not (one line)
    "$base_python" - 2>/dev/null <<'EOF' | sed -n 's/^NOGPU //p' | tail -n1 || true
try:
    import torch
except Exception as exc:
    print(f"NOGPU torch is not importable ({type(exc).__name__}: {exc})")
else:
    if not torch.cuda.is_available():
        print(f"NOGPU torch {torch.__version__} (CUDA build: {torch.version.cuda}) sees no "
              "CUDA device")
EOF
}

require_gpu() {  # silent where a GPU is usable; else one line and exit 3 (2: no Python)
    command -v nvidia-smi >/dev/null || no_gpu "nvidia-smi not found"
    nvidia-smi -L >/dev/null 2>&1 || no_gpu "nvidia-smi finds no GPU (is the driver loaded?)"
    if ! command -v "$base_python" >/dev/null; then
        echo "gpu-check: no Python at $base_python: run scripts/bootstrap.sh gpu, or pass" \
             "--wheels DIR where the machine's Python has CUDA torch and JAX" >&2
        exit 2
    fi
    local why
    why=$(torch_verdict)
    [ -z "$why" ] || no_gpu "$why (in $base_python)"
}

detect() {
    run nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader &&
        run "$base_python" -c "import torch; print('torch', torch.__version__, 'CUDA',
          torch.version.cuda, 'cuDNN', torch.backends.cudnn.version(), 'GPUs',
          torch.cuda.device_count())"
}

missing_requirements() {  # the lines of DIR/requirements-X.Y.txt not installed yet
    "$py" - "$wheels" <<'EOF'
import importlib.metadata as md, pathlib, sys
folder = pathlib.Path(sys.argv[1])
version = "%d.%d" % sys.version_info[:2]
listing = folder / f"requirements-{version}.txt"
if not listing.is_file():
    print(f"gpu-check: {folder} has no wheels for Python {version} (no {listing.name}): run "
          f"scripts/gpu-wheels.sh {folder} --python {version} where there is network",
          file=sys.stderr)
    sys.exit(2)
for line in listing.read_text().split():
    try:
        md.version(line.split("==")[0])     # importable here (venv or system): keep it
    except md.PackageNotFoundError:
        print(line)
EOF
}

install_wheels() {
    if [ ! -x "$venv/bin/python" ]; then
        run "$base_python" -m venv --system-site-packages "$venv" || return $?
    fi
    # A venv made from a venv (the GPU image's python3 is one) sees the base interpreter's
    # packages, not that venv's torch and JAX: name the machine Python's site folders in a .pth
    echo "+ $base_python's site folders -> $venv's site-packages/gpu-check-base.pth"
    if [ "$dry" = 0 ]; then
        local purelib
        purelib=$("$py" -c 'import sysconfig; print(sysconfig.get_path("purelib"))') || return $?
        "$base_python" -c 'import site; print("\n".join(site.getsitepackages()))' \
            > "$purelib/gpu-check-base.pth" || return $?
    fi
    local missing=""
    if [ "$dry" = 1 ]; then
        echo "+ $py - $wheels  # the lines of $wheels/requirements-<X.Y>.txt not installed yet"
        missing="<those name==version lines>"
    else
        missing=$(missing_requirements) || return $?
    fi
    local pip=("$py" -m pip install -q --disable-pip-version-check --no-index
               --find-links "$wheels" --no-deps)
    # shellcheck disable=SC2086  # $missing: name==version words
    if [ -n "$missing" ]; then run "${pip[@]}" $missing || return $?; fi
    run "${pip[@]}" -e . || return $?
    # torch and JAX must still be the machine's own; pip check lists what the machine's versions
    # do not satisfy, less what DIR leaves out on purpose (scripts/gpu-wheels.sh): numba and
    # llvmlite (pytensor-numba, a CPU engine, is then unavailable; PyTensor's other backends
    # never import Numba) and matplotlib (rnnperf plot alone)
    run "$py" -c "import torch, jax; print('torch', torch.__version__, torch.__file__);
print('jax', jax.__version__, jax.__file__, jax.devices())" || return $?
    [ "$dry" = 1 ] || { "$py" -m pip check 2>&1 | grep -v -i -E 'numba|llvmlite|matplotlib' ||
                        true; }
}

tests() {
    run "$py" -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py
}

parity() {
    run mkdir -p "$out_dir" || return $?
    run "$py" -m rnnperf parity --flags device=cuda --engines all --no-progress \
        --timeout "$((worker_timeout * 2))" --json "$out_dir/$stamp-parity.json"
}

bench_profiles() {  # one --profile per engine x precision
    local engine precision
    for precision in "${PRECISIONS[@]}"; do
        for engine in "${BENCH_ENGINES[@]}"; do
            printf -- '--profile\nengine=%s,matmul_precision=%s\n' "$engine" "$precision"
        done
    done
}

bench() {
    run mkdir -p "$out_dir" || return $?
    local profiles
    mapfile -t profiles < <(bench_profiles)
    run "$py" -m rnnperf bench --flags device=cuda,floatX=float32 "${profiles[@]}" \
        --shape "$RW" --shape "$SMALL" --task train --task forward \
        --min-time 0.05 --rounds 5 --warmup 1 --timeout "$worker_timeout" --no-progress \
        --out "$results"
}

table() {
    local md="${results%.json}.md"
    echo "+ $py -m rnnperf table $results --markdown > $md"
    [ "$dry" = 0 ] || return 0
    if [ ! -f "$results" ]; then
        echo "gpu-check: no $results (the bench phase did not write it)" >&2
        return 1
    fi
    "$py" -m rnnperf table "$results" --markdown > "$md" && cat "$md"
}

tune() {
    run mkdir -p "$out_dir" || return $?
    run "$py" -m rnnperf tune --space gpu --shape "$RW" --task train --budget "$tune_budget" \
        --timeout "$worker_timeout" --no-progress --out "$out_dir/$stamp.theanorc"
}

verdict() {  # 1 if anything failed, else 2 (bad usage or config), else 3 (unavailable), else 0
    local rc worst=0
    for rc in "${codes[@]}"; do
        case "$rc" in
            0) ;;
            3) [ "$worst" != 0 ] || worst=3 ;;
            2) [ "$worst" = 1 ] || worst=2 ;;
            *) worst=1 ;;
        esac
    done
    echo "$worst"
}

[ "$dry" = 1 ] || require_gpu
total_start=$(now)
phase detect detect
if [ -n "$wheels" ] && wants install; then phase install install_wheels; fi
if [ "$dry" = 0 ] && ! command -v "$py" >/dev/null; then
    echo "gpu-check: no Python at $py: run scripts/bootstrap.sh gpu, or pass --wheels DIR" >&2
    exit 2
fi
if wants tests; then phase tests tests; fi
if wants parity; then phase parity parity; fi
if wants bench; then phase bench bench; phase table table; fi
if wants tune; then phase tune tune; fi
echo "gpu-check: time per phase: $(printf '%s, ' "${timings[@]}")total" \
     "$(since "$total_start" %.0f) s"
if [ "$dry" = 1 ]; then
    echo "gpu-check: dry run; would write $results, ${results%.json}.md and" \
         "$out_dir/$stamp-parity.json"
    exit 0
fi
code=$(verdict)
echo "gpu-check: exit $code; results in $results (table ${results%.json}.md, parity" \
     "$out_dir/$stamp-parity.json, tune $out_dir/$stamp.theanorc); to commit them: cp" \
     "$results docs/gpu-performance.json && cp ${results%.json}.md docs/gpu-performance.md"
exit "$code"

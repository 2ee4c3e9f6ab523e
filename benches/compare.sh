#!/usr/bin/env bash
# One command for the side-by-side table: the Rust criterion benches, the PyTorch peer on the same rows with the
# same thread count, the measured FMA peak, then a markdown table with ratios (also saved under
# target/bench-compare/). Usage:
#   benches/compare.sh [--quick] [--threads N] [--only SUBSTRING]
# PEER_PYTHON selects the Python that has torch (default: python3). Without torch the PyTorch column is empty.
# The peer runs with OpenMP's own default waiting (as PyTorch's users run it) unless PEER_OMP_WAIT_POLICY sets
# OMP_WAIT_POLICY. On 2 cores shared with other processes, the default's spinning made PyTorch 10-100x slower
# (a 256^3 sgemm took 16 ms, a scheduler slice, instead of 0.3 ms): PEER_OMP_WAIT_POLICY=PASSIVE there. On a
# quiet machine PASSIVE handicaps PyTorch (its small products wait for sleeping threads): leave it unset.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=""
threads=2
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) quick=1 ;;
        --threads) threads="$2"; shift ;;
        --only) only="$2"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
out=target/bench-compare
# Stale estimates of rows not run now must not reach the table.
[ -z "$only" ] && rm -rf target/criterion
mkdir -p "$out"
export RAYON_NUM_THREADS="$threads"
py="${PEER_PYTHON:-python3}"
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "threads: $threads (RAYON_NUM_THREADS for Rust, torch.set_num_threads for PyTorch)"
    echo "peer OMP_WAIT_POLICY: ${PEER_OMP_WAIT_POLICY:-unset, OpenMP default}"
    echo "rustc: $(rustc --version)"
} > "$out/machine.txt"
cargo bench --bench peak 2>/dev/null | tee "$out/peak.txt"
filter=()
[ -n "$only" ] && filter=("$only")
BENCH_QUICK="$quick" cargo bench --bench gemm --bench conv --bench sets --bench rn -- "${filter[@]}" 2>&1 \
    | grep -E '^[a-z_]+/|time:|thrpt:' | tee "$out/rust.txt"
peer_args=(--threads "$threads")
[ -n "$quick" ] && peer_args+=(--quick)
[ -n "$only" ] && peer_args+=(--only "$only")
if "$py" -c 'import torch' 2>/dev/null; then
    policy=()
    [ -n "${PEER_OMP_WAIT_POLICY:-}" ] && policy=(OMP_WAIT_POLICY="$PEER_OMP_WAIT_POLICY")
    env "${policy[@]}" OMP_NUM_THREADS="$threads" MKL_NUM_THREADS="$threads" \
        "$py" benches/peer/peer.py "${peer_args[@]}" | tee "$out/peer.jsonl"
else
    echo "no torch for $py: the PyTorch column stays empty" >&2
    : > "$out/peer.jsonl"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out/machine.txt"
python3 benches/peer/table.py target/criterion "$out/peer.jsonl" "$out/peak.txt" "$out/machine.txt" | tee "$out/table.md"

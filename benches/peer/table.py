"""Builds the side-by-side table from criterion's estimates, the peer's JSON lines and the FMA peak.

Usage: python3 benches/peer/table.py CRITERION_DIR PEER_JSONL PEAK_TXT MACHINE_TXT
Times are medians. ratio = Rust time / PyTorch time (below 1: Rust is faster).
"""

import json
import os
import re
import sys

# Row id -> (target ratio to PyTorch, FLOP per iteration or None).
ROWS = {
    "sgemm/256": (1.0, 2 * 256**3),
    "sgemm/512": (1.0, 2 * 512**3),
    "sgemm/1024": (1.0, 2 * 1024**3),
    "sgemm_1thread/256": (None, 2 * 256**3),
    "sgemm_1thread/512": (None, 2 * 512**3),
    "sgemm_1thread/1024": (None, 2 * 1024**3),
    "sgemm_variants/at_b_512": (1.0, 2 * 512**3),
    "sgemm_variants/a_bt_512": (1.0, 2 * 512**3),
    "sgemm_variants/batched_64x64x64x64": (1.0, 2 * 64**4),
    "circles/encoder_fwd_bwd_b64": (1.0, None),
    "circles/decoder_quarter_fwd_bwd_1024": (1.0, None),
    "circles/decoder_full_fwd_bwd_1024": (1.0, None),
    "sets/fspool_fwd_bwd": (0.5, None),
    "sets/srn_outer_step": (0.5, None),
    "sets/lstm_bidir_fwd_bwd": (0.5, None),
    "sets/small_ops_1000": (0.5, None),
    "rn/sort_of_clevr_train_step_b64": (1.0, None),
    "rn/sort_of_clevr_srn_train_step_b64": (1.0, None),
}


def criterion_medians(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) == "new" and "estimates.json" in files and "benchmark.json" in files:
            with open(os.path.join(dirpath, "benchmark.json")) as f:
                full_id = json.load(f)["full_id"]
            with open(os.path.join(dirpath, "estimates.json")) as f:
                out[full_id] = json.load(f)["median"]["point_estimate"] * 1e-9
    return out


def fmt_time(s):
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def main():
    crit_dir, peer_path, peak_path, machine_path = sys.argv[1:5]
    rust = criterion_medians(crit_dir)
    peer, torch_info = {}, {}
    with open(peer_path) as f:
        for line in f:
            rec = json.loads(line)
            if "id" in rec:
                peer[rec["id"]] = rec["median_s"]
            else:
                torch_info = rec
    # The peak: threads x the single-core FMA throughput (best of many short runs on one core, which other
    # processes rarely disturb), next to the all-core measurement (which they do), for the vectors of the
    # instruction set the kernels ran with (`isa in use:` from peak.rs, which SRN_ISA sets; AVX-512 in logs
    # from before that line existed). The portable level has no FMA peak to compare with.
    with open(peak_path) as f:
        peak_lines = f.read().splitlines()
    isa = next((m.group(1) for m in map(re.compile(r"isa in use: (\w+)").search, peak_lines) if m), "avx512")
    vectors = {"avx512": ("avx512f 512-bit", "AVX-512"), "avx2": (r"avx2\+fma 256-bit", "AVX2 (256-bit)")}
    single, all_cores, threads = None, None, 1
    if isa in vectors:
        label = vectors[isa][0]
        for line in peak_lines:
            m = re.search(label + r": 1 thread ([\d.]+) GFLOP/s", line)
            if m:
                single = float(m.group(1))
            m = re.search(label + r": (\d+) threads ([\d.]+) GFLOP/s", line)
            if m:
                threads, all_cores = int(m.group(1)), float(m.group(2))
    peak = single * threads if single else None
    with open(machine_path) as f:
        print("".join("    " + line for line in f))
    if torch_info:
        print(f"    torch {torch_info.get('torch')}, {torch_info.get('threads')} threads")
    if peak:
        print(
            f"    f32 peak: {threads} x {single:.1f} GFLOP/s (measured {vectors[isa][1]} FMA throughput of one core, the "
            f"kernels' instruction set) = {peak:.1f} "
            f"GFLOP/s; all {threads} cores measured together: {all_cores:.1f} GFLOP/s"
        )
    print()
    print("| row | Rust | PyTorch | ratio | target | met | GFLOP/s Rust | GFLOP/s PyTorch | % of peak (Rust) |")
    print("|---|---:|---:|---:|---:|:-:|---:|---:|---:|")
    for row, (target, flop) in ROWS.items():
        r, p = rust.get(row), peer.get(row)
        if r is None and p is None:
            continue
        ratio = r / p if r and p else None
        met = "-" if ratio is None or target is None else ("yes" if ratio <= target else "no")
        gr = f"{flop / r / 1e9:.1f}" if flop and r else ""
        gp = f"{flop / p / 1e9:.1f}" if flop and p else ""
        # One-thread rows against one core's peak, the others against all cores'.
        row_peak = single if row.startswith("sgemm_1thread/") else peak
        pct = f"{100 * flop / r / 1e9 / row_peak:.0f}%" if flop and r and row_peak else ""
        if flop and r and row_peak and row.startswith(("sgemm/", "sgemm_1thread/")):
            hit = "yes" if flop / r / 1e9 >= 0.85 * row_peak else "no"
            met = hit if met == "-" else f"{met} / {hit}"
        ratio_s = f"{ratio:.2f}x" if ratio else "-"
        target_s = f"{target:.1f}x" if target else "85% peak"
        print(f"| {row} | {fmt_time(r)} | {fmt_time(p)} | {ratio_s} | {target_s} | {met} | {gr} | {gp} | {pct} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# Collect the C-SWM Atari data sets into data/atari/ (git-ignored), installing what the collector needs into
# a virtual environment of its own (.venv-atari at the repository root; VENV=... to put it elsewhere).
#
#   tools/atari/collect.sh [pong|spaceinvaders|all] [--train-episodes N] [--eval-episodes N]
#
# Default: all, 1,000 training episodes (seed 1) and 100 evaluation episodes (seed 2), as the C-SWM reference.
# Writes data/atari/GAME-train.safetensors and data/atari/GAME-eval.safetensors. ale-py's wheels ship the
# ROMs: nothing else is downloaded.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${VENV:-$repo/.venv-atari}"
out="${OUT:-$repo/data/atari}"

games=(pong spaceinvaders)
train=1000
eval=100
case "${1:-all}" in
  pong|spaceinvaders) games=("$1"); shift ;;
  all) if [ $# -gt 0 ]; then shift; fi ;;
  -*) ;;
  *) echo "usage: $0 [pong|spaceinvaders|all] [--train-episodes N] [--eval-episodes N]" >&2; exit 2 ;;
esac
while [ $# -gt 0 ]; do
  case "$1" in
    --train-episodes) train="$2"; shift 2 ;;
    --eval-episodes) eval="$2"; shift 2 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

if [ ! -x "$venv/bin/python" ]; then
  echo "creating the virtual environment $venv"
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  ale-py==0.12.1 gymnasium==1.4.0 numpy==2.4.6 safetensors==0.8.0 pillow==13.0.0

for game in "${games[@]}"; do
  "$venv/bin/python" "$here/collect.py" --game "$game" --episodes "$train" --seed 1 \
    --out "$out/$game-train.safetensors"
  "$venv/bin/python" "$here/collect.py" --game "$game" --episodes "$eval" --seed 2 \
    --out "$out/$game-eval.safetensors"
done

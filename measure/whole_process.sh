#!/usr/bin/env bash
# Whole-process embedding speed (issue 22): `lookbook embed` of 200 demo photos into a fresh
# catalogue, model load included, against `measure/baselines.py --embed` (PyTorch decode +
# forward, without its import and load), lookbook run twice before and twice after PyTorch.
#
#     bash measure/whole_process.sh [avx2|avx512|avx512bf16|amx] [f32|bf16]
#
# The cap goes to LOOKBOOK_CPU and, as the matching oneDNN level, to ONEDNN_MAX_CPU_ISA. The
# 224x224 rows run the shipped weights with their input metadata rewritten to 224x224. Needs
# a release build (`cargo build --release`) and the bench venv (`python3 measure/baselines.py`
# makes it). Not part of the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cap=${1:-}
precision=${2:-f32}
case "$cap" in
  avx2) isa=AVX2 ;;
  avx512) isa=AVX512_CORE ;;
  avx512bf16) isa=AVX512_CORE_BF16 ;;
  amx|"") isa= ;;
  *) echo "unknown cap $cap" >&2; exit 2 ;;
esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
lookbook=$PWD/target/release/lookbook
head -201 demo/styles.csv > "$work/styles.csv"
"$lookbook" --db "$work/t.db" import --metadata "$work/styles.csv" --images demo/images > /dev/null
.bench-venv/bin/python - "$work/w224.safetensors" <<'PY'
import json, struct, sys
b = open("models/lookbook-fashion-resnet50.safetensors", "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
h["__metadata__"].update({"lookbook.input_height": "224", "lookbook.input_width": "224"})
j = json.dumps(h, separators=(",", ":")).encode()
j += b" " * (-len(j) % 8)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(j)) + j + b[8 + n:])
PY
embed() {
  local label=$1; shift
  cp "$work/t.db" "$work/r.db"; rm -f "$work/r.ivf"
  local s e
  s=$(date +%s.%N)
  LOOKBOOK_CPU=$cap "$lookbook" --db "$work/r.db" embed --batch 8 --precision "$precision" "$@" > /dev/null 2>&1
  e=$(date +%s.%N)
  python3 -c "print('lookbook $precision ${cap:-best} $label', round(200 / ($e - $s), 1), 'img/s, whole process')"
}
# The first load of each weights file packs and keeps its network: not part of a run.
embed warm-up > /dev/null; embed warm-up --weights "$work/w224.safetensors" > /dev/null
round() { embed 112x84; embed 224x224 --weights "$work/w224.safetensors"; }
round; round
ONEDNN_MAX_CPU_ISA=$isa python3 measure/baselines.py --embed 2>&1 | grep "img/s" | grep -v onnx || true
round; round

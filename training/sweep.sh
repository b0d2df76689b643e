#!/usr/bin/env bash
# Trains the data and schedule variants of models/README.md side by side on one GPU, from a pack
# (training/pack.py), within a time budget, and keeps the best finished model.
#
#   PACK=.devdata/pack.npz OUT=out bash training/sweep.sh
#
# Every variant is the two-stage recipe (softmax, then the cosine classifier) with the same epoch
# length (9,920 photos, the shipped recipe's training set), so only the named change differs.
# Runs are independent processes, so a slow or failed one does not stop the others; when the
# budget runs out the unfinished ones are stopped and the best finished stage 2 (by validation
# P@10) is written to $OUT in 12 MB parts (`cat model.part* > lookbook-fashion-resnet50.safetensors`).
set -u
PACK=${PACK:-.devdata/pack.npz}
RUN=${RUN:-/tmp/lookbook-sweep}
OUT=${OUT:-training/sweep-out}
BUDGET=${BUDGET:-420}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-"--height 112 --width 84"}
EPOCH_SIZE=${EPOCH_SIZE:-9920}
S1=${S1:-14}
S2=${S2:-18}
LONG=${LONG:-2}
S2_LONGER=${S2_LONGER:-45}
VARIANTS=${VARIANTS:-"base base-seed8 more more-small more-small-degrade long"}
mkdir -p "$RUN" "$OUT"
here=$(cd "$(dirname "$0")" && pwd)
common="--pack $PACK --device $DEVICE --threads 2 --eval-every 2 --epoch-size $EPOCH_SIZE --batch 64 $SIZE"

# stage1 epochs, stage2 epochs, then train.py flags shared by both stages
two_stage() {
  local name=$1 e1=$2 e2=$3
  shift 3
  python3 "$here/train.py" $common --epochs "$e1" --warmup-epochs 4.5 --lr 2e-3 \
    --out "$RUN/$name-s1" "$@" >"$RUN/$name-s1.log" 2>&1 &&
    python3 "$here/train.py" $common --epochs "$e2" --warmup-epochs 2 --lr 1e-3 \
      --cosine-scale 16 --margin 0.1 --init "$RUN/$name-s1/checkpoint.pt" \
      --out "$RUN/$name" "$@" >"$RUN/$name.log" 2>&1
}

# stage 1 alone: $RUN/<name>-s1
stage1() {
  local name=$1 e1=$2
  shift 2
  python3 "$here/train.py" $common --epochs "$e1" --warmup-epochs 4.5 --lr 2e-3 \
    --out "$RUN/$name-s1" "$@" >"$RUN/$name-s1.log" 2>&1
}

# stage 2 alone, from the stage 1 of another run: name, that run, epochs, then flags
stage2() {
  local name=$1 from=$2 e2=$3
  shift 3
  python3 "$here/train.py" $common --epochs "$e2" --warmup-epochs 2 --lr 1e-3 \
    --cosine-scale 16 --margin 0.1 --init "$RUN/$from-s1/checkpoint.pt" \
    --out "$RUN/$name" "$@" >"$RUN/$name.log" 2>&1
}

variant() {
  case $1 in
    base) two_stage base "$S1" "$S2" --train-sets main,extra ;;
    base-seed8) two_stage base-seed8 "$S1" "$S2" --train-sets main,extra --seed 8 ;;
    more) two_stage more "$S1" "$S2" --train-sets main,extra,more ;;
    more-small) two_stage more-small "$S1" "$S2" --train-sets main,extra,more,small ;;
    more-small-degrade) two_stage more-small-degrade "$S1" "$S2" --train-sets main,extra,more,small --degrade 0.25 ;;
    long) two_stage long $((S1 * LONG)) $((S2 * LONG)) --train-sets main,extra,more,small --degrade 0.25 ;;
    # `long`'s stage 1 once, then two longer stage 2s side by side: the same margin, and a larger one.
    longer)
      local data="--train-sets main,extra,more,small --degrade 0.25"
      stage1 longer $((S1 * LONG)) $data &&
        { stage2 longer-s2 longer "$S2_LONGER" $data &
          stage2 longer-m2 longer "$S2_LONGER" $data --margin 0.2 &
          wait; } ;;
    *) echo "unknown variant $1" >&2 ;;
  esac
}

(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true) >"$OUT/gpu.txt" 2>&1
start=$(date +%s)
pids=()
for v in $VARIANTS; do
  variant "$v" &
  pids+=($!)
done
while :; do
  alive=0
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  if [ $(($(date +%s) - start)) -ge "$BUDGET" ]; then
    echo "budget of ${BUDGET}s spent: stopping the unfinished runs"
    pkill -f "$here/train.py" || true
    sleep 2
    break
  fi
  sleep 5
done
echo "trained for $(($(date +%s) - start))s"

python3 - "$RUN" "$OUT" <<'EOF'
import json, os, shutil, subprocess, sys
run, out = sys.argv[1], sys.argv[2]
# Every run that left a log, stage 2 names first seen as <name>.log, stage 1 as <name>-s1.log.
names = sorted({f[:-len(".log")].removesuffix("-s1") for f in os.listdir(run) if f.endswith(".log")})
summary = {}
for name in names:
    for stage, log in (("stage1", f"{name}-s1.log"), ("stage2", f"{name}.log")):
        path = os.path.join(run, log)
        if os.path.exists(path):
            recs = [json.loads(l) for l in open(path) if l.startswith('{"epoch"')]
            tail = [l for l in open(path) if "done in" in l or "img/s" in l][-1:]
            summary.setdefault(name, {})[stage] = {"history": recs, "last": tail}
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=1)
best, best_p = None, -1.0
for name, s in summary.items():
    h = s.get("stage2", {}).get("history", [])
    done = any("done in" in l for l in s.get("stage2", {}).get("last", []))
    if done and h and h[-1].get("val_p10", -1) > best_p:
        best, best_p = name, h[-1]["val_p10"]
for name, s in summary.items():
    for stage in ("stage1", "stage2"):
        h = s.get(stage, {}).get("history", [])
        if h:
            print(name, stage, "epochs", h[-1]["epoch"], "last", {k: round(v, 4) for k, v in h[-1].items() if k.startswith("val")})
print("best finished:", best, best_p)
if best:
    src = os.path.join(run, best, "lookbook-fashion-resnet50.safetensors")
    subprocess.run(["split", "-b", "12M", "-d", src, os.path.join(out, "model.part")], check=True)
    open(os.path.join(out, "best.txt"), "w").write(f"{best} {best_p}\n")
subprocess.run(["tar", "czf", os.path.join(out, "logs.tgz"), "-C", run] +
               [f for f in os.listdir(run) if f.endswith(".log")], check=True)
EOF

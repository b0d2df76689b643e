"""lookbook against PyTorch bf16, alternated, so a figure survives a noisy machine (issue 38).

    python3 measure/alternate.py [--pairs 5] [--levels avx512,avx512bf16] [--sizes 112x84,224x224]
                                 [--forward] [--process] [--uncapped] [--python PY] [--json OUT.json]

A pair is one run of lookbook at every level and one of PyTorch, at every size; the order
within a pair flips each time, so a slow minute hurts both sides alike. It prints, per size
and level, the median images a second, the spread (lowest to highest run) and the median of
the per-pair ratios against PyTorch bf16 channels-last (with their spread).

Each level is compared with PyTorch capped to the matching oneDNN level (ONEDNN_MAX_CPU_ISA:
avx2 AVX2, avx512 AVX512_CORE, avx512bf16 AVX512_CORE_BF16, amx AVX512_CORE_AMX), so the
`avx512bf16` rows on an AMX Xeon compare both libraries on the instructions a Zen 4 has;
--uncapped compares every level with PyTorch at its best instead. The level `avx512bf16-dot`
is `avx512bf16` with every convolution on `vdpbf16ps` (LOOKBOOK_MEASURE=0), where plain
`avx512bf16` runs each on whichever product measured faster (lookbook::vision::tune).

--forward  the forward pass alone on random input, batch 8, two threads:
           `target/release/examples/forward` against PyTorch under autocast (bf16).
--process  the whole process: `lookbook embed --batch 8` of 200 demo photos into a copy of a
           freshly imported catalogue (process start, weights, decode, writes), against PyTorch
           decode + preprocess + forward of the same photos without its import or load. Its
           lookbook/forward column is the share of the forward pass's speed that the whole
           process keeps (the issue's goal: at least 0.85).
With neither flag both run. Levels default to every level this CPU has (LOOKBOOK_CPU values);
sizes other than the weights' own are run with the input size in a copy of the weights'
metadata rewritten. Needs `cargo build --release --bin lookbook --example forward` and a
Python with torch and torchvision (`--python`, default .bench-venv/bin/python, which
`python3 measure/baselines.py` creates). Not part of the test suite.
"""
import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

# oneDNN's level for each LOOKBOOK_CPU level ("portable" has none: PyTorch uncapped).
ONEDNN_ISA = {"avx2": "AVX2", "avx512": "AVX512_CORE", "avx512bf16": "AVX512_CORE_BF16",
              "avx512bf16-dot": "AVX512_CORE_BF16", "amx": "AVX512_CORE_AMX"}
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WEIGHTS = os.path.join(ROOT, "models", "lookbook-fashion-resnet50.safetensors")
LOOKBOOK = os.path.join(ROOT, "target", "release", "lookbook")
FORWARD = os.path.join(ROOT, "target", "release", "examples", "forward")
PHOTOS = 200
BATCH = 8
# Rounds of BATCH images per forward run: about two seconds of work at the speeds seen so far.
ROUNDS = {(112, 84): 24, (224, 224): 6}

# The PyTorch side, run in the given Python: `forward H W ROUNDS` or `process H W LIST_FILE`.
TORCH_CHILD = r"""
import sys, time, numpy as np, torch, torchvision
from PIL import Image
torch.set_num_threads(2)
mode, h, w, arg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = torchvision.models.resnet50().eval().to(memory_format=torch.channels_last)
model.fc = torch.nn.Identity()
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
def run(x):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x.contiguous(memory_format=torch.channels_last))
def load(path):
    # cover-resize and centre-crop to h x w, as lookbook's preprocessing does
    im = Image.open(path).convert("RGB")
    s = max(w / im.width, h / im.height)
    im = im.resize((max(w, round(im.width * s)), max(h, round(im.height * s))), Image.BILINEAR)
    l, t = (im.width - w) // 2, (im.height - h) // 2
    return np.asarray(im.crop((l, t, l + w, t + h)), dtype=np.float32) / 255.0
with torch.inference_mode():
    for _ in range(3):
        run(torch.randn(8, 3, h, w))
    if mode == "forward":
        x, rounds = torch.randn(8, 3, h, w), int(arg)
        t = time.perf_counter()
        for _ in range(rounds):
            run(x)
        print(8 * rounds / (time.perf_counter() - t))
    else:
        paths = open(arg).read().split()
        t = time.perf_counter()
        for i in range(0, len(paths), 8):
            x = torch.from_numpy(np.stack([load(p) for p in paths[i:i + 8]])).permute(0, 3, 1, 2)
            run((x - mean) / std)
        print(len(paths) / (time.perf_counter() - t))
"""


def cpu_levels():
    """The LOOKBOOK_CPU levels this CPU has, from /proc/cpuinfo's flags."""
    try:
        flags = set(next(l for l in open("/proc/cpuinfo") if l.startswith("flags")).split(":")[1].split())
    except (OSError, StopIteration):
        return ["portable"]
    levels = []
    if {"avx2", "fma"} <= flags:
        levels.append("avx2")
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        levels.append("avx512")
        if "avx512_bf16" in flags:
            levels.append("avx512bf16")
    if {"amx_bf16", "amx_tile"} <= flags:
        levels.append("amx")
    return levels or ["portable"]


def weights_at(h, w, folder):
    """The shipped weights with the input size in their metadata set to h x w (a copy)."""
    b = open(WEIGHTS, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8 : 8 + n])
    meta = head.get("__metadata__", {})
    if meta.get("lookbook.input_height") == str(h) and meta.get("lookbook.input_width") == str(w):
        return WEIGHTS
    meta.update({"lookbook.input_height": str(h), "lookbook.input_width": str(w)})
    head["__metadata__"] = meta
    j = json.dumps(head, separators=(",", ":")).encode()
    j += b" " * (-len(j) % 8)
    path = os.path.join(folder, f"w{h}x{w}.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(j)) + j + b[8 + n :])
    return path


def level_env(level, work):
    """The environment a lookbook run at `level` gets: the cap, and a data folder of its own
    (kept networks, measured for this run's sizes, outside the user's)."""
    env = dict(os.environ, LOOKBOOK_CPU=level.removesuffix("-dot"), XDG_DATA_HOME=os.path.join(work, "data"))
    if level.endswith("-dot"):
        env["LOOKBOOK_MEASURE"] = "0"
    return env


def lookbook_forward(level, weights, h, w, work):
    out = subprocess.run([FORWARD, weights, str(h), str(w), str(BATCH), str(ROUNDS[(h, w)])],
                         env=level_env(level, work), capture_output=True, text=True, check=True)
    # The example prints "... N images/s ..."; take the number before "images/s" or "img/s".
    words = out.stdout.replace("img/s", "images/s").split()
    return float(words[words.index("images/s") - 1])


def lookbook_process(level, weights, work):
    db = os.path.join(work, "r.db")
    shutil.copy(os.path.join(work, "t.db"), db)
    for extra in ("r.ivf", "r.db-wal", "r.db-shm"):
        if os.path.exists(os.path.join(work, extra)):
            os.remove(os.path.join(work, extra))
    t = time.perf_counter()
    subprocess.run([LOOKBOOK, "--db", db, "embed", "--batch", str(BATCH), "--weights", weights],
                   env=level_env(level, work), capture_output=True, check=True)
    return PHOTOS / (time.perf_counter() - t)


def torch_run(python, isa, mode, h, w, arg):
    env = dict(os.environ)
    if isa:
        env["ONEDNN_MAX_CPU_ISA"] = isa
    out = subprocess.run([python, "-c", TORCH_CHILD, mode, str(h), str(w), str(arg)],
                         env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def summary(xs):
    return {"median": statistics.median(xs), "low": min(xs), "high": max(xs), "runs": xs}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--levels", default=",".join(cpu_levels()))
    ap.add_argument("--sizes", default="112x84,224x224")
    ap.add_argument("--forward", action="store_true")
    ap.add_argument("--process", action="store_true")
    ap.add_argument("--uncapped", action="store_true", help="PyTorch at its best against every level")
    ap.add_argument("--python", default=os.path.join(ROOT, ".bench-venv", "bin", "python"))
    ap.add_argument("--json", help="also write every run to this file")
    args = ap.parse_args()
    kinds = [k for k, on in (("forward", args.forward), ("process", args.process)) if on] or ["forward", "process"]
    levels = [l for l in args.levels.split(",") if l]
    # PyTorch's side per level: the matching oneDNN cap, or one uncapped run shared by all.
    torch_of = {l: ("pytorch" if args.uncapped or l not in ONEDNN_ISA else "pytorch@" + ONEDNN_ISA[l]) for l in levels}
    torches = sorted(set(torch_of.values()))
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    for s in sizes:
        ROUNDS.setdefault(s, max(2, round(24 * 112 * 84 / (s[0] * s[1]))))
    for path, how in ((LOOKBOOK, "cargo build --release --bin lookbook"),
                      (FORWARD, "cargo build --release --example forward"),
                      (args.python, "python3 measure/baselines.py --forward (creates .bench-venv)")):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: run `{how}` first")

    runs = {}  # (kind, size, who) -> [images/s]
    with tempfile.TemporaryDirectory() as work:
        weights = {s: weights_at(*s, work) for s in sizes}
        if "process" in kinds:
            styles = os.path.join(work, "styles.csv")
            with open(os.path.join(ROOT, "demo", "styles.csv")) as src, open(styles, "w") as dst:
                dst.writelines(l for i, l in enumerate(src) if i <= PHOTOS)
            subprocess.run([LOOKBOOK, "--db", os.path.join(work, "t.db"), "import", "--metadata", styles,
                            "--images", os.path.join(ROOT, "demo", "images")], capture_output=True, check=True)
            photos = sorted(os.listdir(os.path.join(ROOT, "demo", "images")))
            ids = [l.split(",")[0] for l in open(styles).read().splitlines()[1:]]
            wanted = set(ids)
            listed = [os.path.join(ROOT, "demo", "images", f) for f in photos if f.split(".")[0] in wanted]
            with open(os.path.join(work, "photos.txt"), "w") as f:
                f.write("\n".join(listed[:PHOTOS]))
        # The first load of each weights file packs (and at avx512bf16 measures) and keeps its
        # network: not part of a run.
        for s in sizes:
            for level in levels:
                if "process" in kinds:
                    lookbook_process(level, weights[s], work)
                else:
                    lookbook_forward(level, weights[s], *s, work)

        def lookbook_side():
            for s in sizes:
                for level in levels:
                    if "forward" in kinds:
                        runs.setdefault(("forward", s, level), []).append(
                            lookbook_forward(level, weights[s], *s, work))
                    if "process" in kinds:
                        runs.setdefault(("process", s, level), []).append(lookbook_process(level, weights[s], work))

        def torch_side():
            for s in sizes:
                for who in torches:
                    isa = who.partition("@")[2]
                    if "forward" in kinds:
                        runs.setdefault(("forward", s, who), []).append(
                            torch_run(args.python, isa, "forward", *s, ROUNDS[s]))
                    if "process" in kinds:
                        runs.setdefault(("process", s, who), []).append(
                            torch_run(args.python, isa, "process", *s, os.path.join(work, "photos.txt")))

        for i in range(args.pairs):
            for side in ((lookbook_side, torch_side) if i % 2 == 0 else (torch_side, lookbook_side)):
                side()
            print(f"pair {i + 1}/{args.pairs} done", file=sys.stderr, flush=True)

    rows = []
    for kind in kinds:
        for s in sizes:
            for who in levels + torches:
                xs = runs[(kind, s, who)]
                row = {"kind": kind, "size": f"{s[0]}x{s[1]}", "who": who, **summary(xs)}
                base = runs[(kind, s, torch_of.get(who, who))]
                row["against"] = torch_of.get(who, who)
                row["vs_pytorch"] = summary([a / b for a, b in zip(xs, base)])
                if kind == "process" and ("forward", s, who) in runs:
                    row["vs_forward"] = summary([a / b for a, b in zip(xs, runs[("forward", s, who)])])
                rows.append(row)
    print(f"{args.pairs} alternated pairs; images/s median (low-high); ratios are medians of per-pair ratios")
    print(f"{'what':<8} {'size':<8} {'who':<25} {'images/s':>22} {'vs PyTorch bf16':>20} {'vs own forward':>20}")
    print("(each level against PyTorch capped to the matching oneDNN level)" if not args.uncapped
          else "(every level against PyTorch uncapped)")
    for r in rows:
        vf = r.get("vs_forward")
        print(f"{r['kind']:<8} {r['size']:<8} {r['who']:<25} "
              f"{r['median']:>8.1f} ({r['low']:.1f}-{r['high']:.1f})".ljust(52)
              + f"{r['vs_pytorch']['median']:>6.2f}x ({r['vs_pytorch']['low']:.2f}-{r['vs_pytorch']['high']:.2f})"
              + (f"   {vf['median']:.2f} ({vf['low']:.2f}-{vf['high']:.2f})" if vf else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu": cpu_name(), "date": time.strftime("%Y-%m-%d"), "rows": rows}, f, indent=1)


def cpu_name():
    try:
        return next(l for l in open("/proc/cpuinfo") if l.startswith("model name")).split(":", 1)[1].strip()
    except (OSError, StopIteration):
        return "unknown"


if __name__ == "__main__":
    main()

"""Baselines for `lookbook bench`, measured on this machine in the same run (issue 13).

    python3 measure/baselines.py [--search] [--embed] [--forward] [--json]

With no flag --search and --embed run. It makes a virtual environment in .bench-venv from
measure/requirements.txt the first time (PyTorch CPU, numpy, pillow, safetensors, torchvision)
and runs itself there. Not part of the test suite.

--search: numpy brute force (one matrix-vector product plus argpartition), p50 and p95 over
          varied queries, at the sizes `lookbook bench` uses for search.
--embed:  PyTorch ResNet50 with the shipped weights (models/), decode and preprocess plus
          forward, f32 NCHW, f32 channels-last and bf16, and the same network exported to
          onnxruntime (f32), batch 8, two threads, on 200 of the
          demo's photos at the shipped model's input size (112x84) and at 224x224.

--forward: the forward pass alone on random input, batch 8, two threads, bf16 channels-last
          and f32 channels-last and NCHW, at 112x84 and 224x224: the counterpart of
          `cargo run --release --example forward -- WEIGHTS H W 8 ROUNDS [f32]`, to alternate
          with it.

Compare with `lookbook bench` run right before or after: absolute figures drift between runs.
Set ONEDNN_MAX_CPU_ISA (AVX2, AVX512_CORE) to cap PyTorch as LOOKBOOK_CPU caps lookbook.
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(ROOT, ".bench-venv")


def ensure_venv():
    """Re-runs this script inside the pinned environment, creating it if needed."""
    if os.environ.get("LOOKBOOK_BENCH_VENV") == "1":
        return
    py = os.path.join(VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "-r", os.path.join(HERE, "requirements.txt")], check=True)
    env = dict(os.environ, LOOKBOOK_BENCH_VENV="1")
    sys.exit(subprocess.run([py, __file__] + sys.argv[1:], env=env).returncode)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * q))]


def search(results):
    import numpy as np

    rng = np.random.default_rng(1)
    for n, dim in [(10_000, 256), (100_000, 256), (1_000_000, 256), (10_000, 2048), (50_000, 2048), (100_000, 2048)]:
        m = rng.standard_normal((n, dim), dtype=np.float32)
        m /= np.linalg.norm(m, axis=1, keepdims=True)
        queries = m[rng.integers(0, n, 64)]
        runs = 20 if n >= 1_000_000 else 60
        times = []
        for i in range(runs):
            q = queries[i % len(queries)]
            t = time.perf_counter()
            s = m @ q
            top = np.argpartition(-s, 10)[:10]
            top = top[np.argsort(-s[top])]
            times.append((time.perf_counter() - t) * 1000)
        results.append({"what": "numpy brute force top-10", "items": n, "dim": dim,
                        "p50_ms": pct(times, 0.5), "p95_ms": pct(times, 0.95)})
        del m


def embed(results):
    import numpy as np
    import torch
    import torchvision
    from PIL import Image
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    weights = load_file(os.path.join(ROOT, "models", "lookbook-fashion-resnet50.safetensors"))
    classes = weights["fc.weight"].shape[0]
    model = torchvision.models.resnet50(num_classes=classes)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    model.fc = torch.nn.Identity()
    model.eval()
    images = sorted(os.listdir(os.path.join(ROOT, "demo", "images")))[:200]
    paths = [os.path.join(ROOT, "demo", "images", f) for f in images]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    def load(path, h, w):
        # cover-resize and centre-crop to h x w, as lookbook's preprocessing does
        im = Image.open(path).convert("RGB")
        scale = max(w / im.width, h / im.height)
        im = im.resize((max(w, round(im.width * scale)), max(h, round(im.height * scale))), Image.BILINEAR)
        left, top = (im.width - w) // 2, (im.height - h) // 2
        return np.asarray(im.crop((left, top, left + w, top + h)), dtype=np.float32) / 255.0

    for (h, w), name, channels_last, dtype in [(s, *v) for s in [(112, 84), (224, 224)] for v in [
            ("f32 NCHW", False, None), ("f32 channels-last", True, None),
            ("bf16 channels-last", True, torch.bfloat16)]]:
        # .to() converts a module in place: a copy keeps the NCHW rows NCHW.
        m = copy.deepcopy(model).to(memory_format=torch.channels_last) if channels_last else model
        with torch.inference_mode():
            t = time.perf_counter()
            for i in range(0, len(paths), 8):
                x = torch.from_numpy(np.stack([load(p, h, w) for p in paths[i:i + 8]])).permute(0, 3, 1, 2)
                x = (x - mean) / std
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                if dtype is not None:
                    with torch.autocast("cpu", dtype=dtype):
                        m(x)
                else:
                    m(x)
            rate = len(paths) / (time.perf_counter() - t)
        results.append({"what": f"PyTorch {name} decode + forward", "input": [h, w], "batch": 8,
                        "images_per_s": rate})

    # onnxruntime on the same network exported from PyTorch (f32, its default CPU provider).
    import tempfile
    import onnxruntime as ort
    for h, w in [(112, 84), (224, 224)]:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "resnet50.onnx")
            torch.onnx.export(model, torch.zeros(8, 3, h, w), path, input_names=["x"], dynamo=False)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 2
            sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
            t = time.perf_counter()
            for i in range(0, len(paths), 8):
                x = np.stack([load(p, h, w) for p in paths[i:i + 8]]).transpose(0, 3, 1, 2)
                x = ((x - mean.numpy()) / std.numpy()).astype(np.float32)
                if len(x) < 8:  # the export fixed the batch; pad the last one
                    x = np.concatenate([x, np.zeros((8 - len(x), 3, h, w), np.float32)])
                sess.run(None, {"x": x})
            rate = len(paths) / (time.perf_counter() - t)
        results.append({"what": "onnxruntime f32 decode + forward", "input": [h, w], "batch": 8,
                        "images_per_s": rate})


def forward(results):
    import torch
    import torchvision
    torch.set_num_threads(2)
    for (h, w), rounds in [((112, 84), 12), ((224, 224), 4)]:
        for name, channels_last, dtype in [("bf16 channels-last", True, torch.bfloat16),
                                           ("f32 channels-last", True, torch.float32),
                                           ("f32 NCHW", False, torch.float32)]:
            model = torchvision.models.resnet50().eval()
            model.fc = torch.nn.Identity()
            x = torch.randn(8, 3, h, w)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
                x = x.to(memory_format=torch.channels_last)
            autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)
            with torch.no_grad(), autocast:
                for _ in range(3):
                    model(x)
                t = time.perf_counter()
                for _ in range(rounds):
                    model(x)
                s = time.perf_counter() - t
            results.append({"what": f"PyTorch {name} forward only", "input": [h, w], "batch": 8,
                            "images_per_s": 8 * rounds / s})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--search", action="store_true")
    ap.add_argument("--embed", action="store_true")
    ap.add_argument("--forward", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ensure_venv()
    both = not args.search and not args.embed and not args.forward
    results = []
    if args.search or both:
        search(results)
    if args.embed or both:
        embed(results)
    if args.forward:
        forward(results)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        if "p50_ms" in r:
            print(f"{r['what']:<40} {r['items']:>8} x {r['dim']:<5} p50 {r['p50_ms']:7.2f} ms  p95 {r['p95_ms']:7.2f} ms")
        else:
            print(f"{r['what']:<40} {r['input'][0]}x{r['input'][1]} batch {r['batch']}: {r['images_per_s']:.1f} img/s")


if __name__ == "__main__":
    main()

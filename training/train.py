"""Train lookbook's fashion ResNet50 backbone from scratch on labelled product photos.

The network is torchvision's ResNet50 (same layer names), so lookbook's candle model loads the
exported safetensors unchanged. Inference stays in Rust; this script only trains.

One command (see models/README.md for the recipe the shipped model used):

    python training/train.py --data ../shared/data/fashion-products \
        --extra ../shared/data/fashion-products-extra --out training/run

It caches resized images, prints progress, checkpoints every epoch (rerun the same command to
resume) and writes `<out>/lookbook-fashion-resnet50.safetensors` (f16) at the end.

The shipped model is two stages: the command above (plain softmax), then a fine-tune of its
checkpoint with a cosine classifier, which trains the L2-normalised pooled features that lookbook
compares directly:

    python training/train.py --data ... --extra ... --out training/run2 \
        --init training/run/checkpoint.pt --cache-dir training/run \
        --cosine-scale 16 --margin 0.1 --lr 1e-3 --epochs 18 --warmup-epochs 2 --eval-every 2
"""
import argparse
import csv
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from safetensors.torch import save_file

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
MASK = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """Same hash as lookbook's `eval::split` so Rust and Python agree on the held-out split."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def is_held_out(pid: int) -> bool:
    """An item is in the validation (held-out) split when its hashed id falls in the first fifth."""
    return splitmix64(pid) % 5 == 0


def read_catalogue(root):
    rows = []
    with open(os.path.join(root, "styles.csv"), newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            try:
                pid = int(r["id"])
            except (KeyError, ValueError):
                continue
            path = os.path.join(root, "images", f"{pid}.jpg")
            if os.path.exists(path):
                rows.append((pid, path, r))
    return rows


def load_image(path, h, w):
    """Cover-resize then centre-crop to h x w, as lookbook's `vision::preprocess` does."""
    img = Image.open(path).convert("RGB")
    sw, sh = img.size
    target = w / h
    if sw / sh > target:  # too wide: crop the sides
        cw, ch = sh * target, sh
    else:
        cw, ch = sw, sw / target
    left, top = (sw - cw) / 2, (sh - ch) / 2
    img = img.resize((w, h), Image.BILINEAR, box=(left, top, left + cw, top + ch))
    return np.asarray(img, dtype=np.uint8)


def build_cache(rows, h, w, path):
    if os.path.exists(path):
        return np.load(path)["x"]
    x = np.zeros((len(rows), h, w, 3), dtype=np.uint8)
    t0 = time.time()
    for i, (_, p, _) in enumerate(rows):
        x[i] = load_image(p, h, w)
        if i % 1000 == 0:
            print(f"cache {i}/{len(rows)} {time.time() - t0:.0f}s", flush=True)
    np.savez(path, x=x)
    return x


class Net(nn.Module):
    """ResNet50 with the article-type classifier as `fc` plus small auxiliary heads."""

    def __init__(self, n_type, n_sub, n_gender, n_colour):
        super().__init__()
        self.backbone = torchvision.models.resnet50(num_classes=n_type, zero_init_residual=True)
        self.sub = nn.Linear(2048, n_sub)
        self.gender = nn.Linear(2048, n_gender)
        self.colour = nn.Linear(2048, n_colour)

    def features(self, x):
        b = self.backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
        return torch.flatten(b.avgpool(x), 1)

    def forward(self, x, scale=0.0):
        f = self.features(x)
        if scale > 0:
            # Cosine classifier: the class scores see only the direction of the pooled features,
            # which is what lookbook's cosine similarity compares.
            main = scale * F.linear(F.normalize(f.float(), dim=1), F.normalize(self.backbone.fc.weight.float(), dim=1))
        else:
            main = self.backbone.fc(f)
        return main, self.sub(f), self.gender(f), self.colour(f)


def to_input(xb, mean, std):
    x = xb.permute(0, 3, 1, 2).float().div_(255.0)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def augment(x, gen):
    """Flips, shifts, mild zoom and brightness/contrast; no hue change (colour is a label)."""
    n = x.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    scale = 1.0 + (torch.rand(n, generator=gen) - 0.5) * 0.3
    tx = (torch.rand(n, generator=gen) - 0.5) * 0.25
    ty = (torch.rand(n, generator=gen) - 0.5) * 0.25
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Pad with the photo's white background (normalised value of 1.0) rather than black.
    white = ((1.0 - torch.tensor(MEAN)) / torch.tensor(STD)).view(1, 3, 1, 1)
    x = F.grid_sample(x - white, grid, padding_mode="zeros", align_corners=False) + white
    b = 1.0 + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5) * 0.3
    return (x * b).contiguous(memory_format=torch.channels_last)


def cutmix(x, gen, prob):
    """With probability `prob`, paste a random box of another photo in the batch over each photo.

    Returns the mixed batch, the partner of each photo and the share of the photo that is still
    its own (1.0 where nothing was pasted), so the loss can weigh both labels by area.
    """
    n, _, h, w = x.shape
    perm = torch.randperm(n, generator=gen)
    lam = torch.ones(n)
    out = x.clone()
    for i in range(n):
        if torch.rand(1, generator=gen).item() >= prob:
            continue
        area = torch.rand(1, generator=gen).item()  # Beta(1, 1): the pasted share
        bh, bw = int(h * math.sqrt(area)), int(w * math.sqrt(area))
        if bh == 0 or bw == 0:
            continue
        top = int(torch.randint(0, h - bh + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - bw + 1, (1,), generator=gen))
        out[i, :, top : top + bh, left : left + bw] = x[perm[i], :, top : top + bh, left : left + bw]
        lam[i] = 1.0 - bh * bw / (h * w)
    return out.contiguous(memory_format=torch.channels_last), perm, lam


def mixed_ce(logits, target, perm, lam, margin_scale=0.0):
    """Cross-entropy against the area-weighted pair of labels (plain CE when lam is all ones)."""
    n_cls = logits.shape[1]
    mix = lam[:, None] * F.one_hot(target, n_cls) + (1 - lam)[:, None] * F.one_hot(target[perm], n_cls)
    if margin_scale > 0:
        logits = logits - margin_scale * mix  # the cosine margin, shared by area
    soft = mix * 0.9 + 0.1 / n_cls  # label smoothing 0.1, as in the plain loss
    return -(soft * F.log_softmax(logits, dim=1)).sum(1).mean()


@torch.no_grad()
def embed(model, xs, mean, std, bs=128):
    model.eval()
    out = []
    for i in range(0, len(xs), bs):
        xb = torch.from_numpy(xs[i : i + bs])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            f = model.features(to_input(xb, mean, std))
        out.append(F.normalize(f.float(), dim=1))
    model.train()
    return torch.cat(out)


def knn_precision(feats, labels, query_mask, k=10):
    """P@k by article type: queries are held-out items, the gallery is the whole catalogue."""
    q = feats[query_mask]
    sims = q @ feats.T
    qi = torch.nonzero(query_mask).flatten()
    sims[torch.arange(len(qi)), qi] = -2.0  # never the query itself
    top = sims.topk(k, dim=1).indices
    return (labels[top] == labels[qi][:, None]).float().mean().item()


def export(model, classes, args, metrics, path):
    sd = {
        k: v.detach().to(torch.float16).contiguous()
        for k, v in model.backbone.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    if args.cosine_scale > 0:
        # Same arg-max as the cosine classifier, in the plain `fc` form the loader expects.
        sd["fc.weight"] = F.normalize(model.backbone.fc.weight.detach().float(), dim=1).to(torch.float16)
        sd["fc.bias"] = torch.zeros_like(sd["fc.bias"])
    meta = {
        "lookbook.architecture": "resnet50",
        "lookbook.input_height": str(args.height),
        "lookbook.input_width": str(args.width),
        "lookbook.crop_fraction": "1.0",
        "lookbook.mean": json.dumps(MEAN),
        "lookbook.std": json.dumps(STD),
        "lookbook.classes": json.dumps(classes),
        "lookbook.recipe": json.dumps(vars(args)),
        "lookbook.metrics": json.dumps(metrics),
    }
    save_file(sd, path, metadata=meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="catalogue whose held-out split is validation")
    ap.add_argument("--extra", action="append", default=[], help="training-only catalogues")
    ap.add_argument("--out", default="training/run")
    ap.add_argument("--height", type=int, default=112)
    ap.add_argument("--width", type=int, default=84)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--warmup-epochs", type=float, default=4.5, help="one-cycle warm-up length")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--aux", type=float, default=0.3, help="weight of the auxiliary heads")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--init", help="start from this checkpoint.pt's weights (a second stage)")
    ap.add_argument("--cache-dir", help="where the resized-photo caches live (default: --out)")
    ap.add_argument("--cosine-scale", type=float, default=0.0, help="> 0: cosine classifier with this scale")
    ap.add_argument("--margin", type=float, default=0.0, help="additive cosine margin (with --cosine-scale)")
    ap.add_argument("--cutmix", type=float, default=0.0, help="share of photos that get a CutMix box")
    ap.add_argument("--ema", type=float, default=0.0, help="> 0: keep an EMA of the weights (this decay per step); "
                    "validate and export the EMA")
    ap.add_argument("--eval-every", type=int, default=3, help="validation P@10 every N epochs")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--bench", action="store_true", help="time 20 steps and exit")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)

    main_rows = read_catalogue(args.data)
    extra_rows = [r for d in args.extra for r in read_catalogue(d)]
    held = np.array([is_held_out(pid) for pid, _, _ in main_rows])
    train_rows = [r for r, h in zip(main_rows, held) if not h] + extra_rows
    classes = sorted({r["articleType"] for _, _, r in main_rows + extra_rows})

    def vocab(key):
        return sorted({r[key] for _, _, r in main_rows + extra_rows})

    subs, genders, colours = vocab("subCategory"), vocab("gender"), vocab("baseColour")

    def labels(rows, key, vals):
        idx = {v: i for i, v in enumerate(vals)}
        return torch.tensor([idx[r[key]] for _, _, r in rows])

    tag = f"{args.height}x{args.width}"
    cache_dir = args.cache_dir or args.out
    x_main = build_cache(main_rows, args.height, args.width, os.path.join(cache_dir, f"cache-main-{tag}.npz"))
    x_extra = (
        build_cache(extra_rows, args.height, args.width, os.path.join(cache_dir, f"cache-extra-{tag}.npz"))
        if extra_rows
        else np.zeros((0, args.height, args.width, 3), np.uint8)
    )
    x_train = np.concatenate([x_main[~held], x_extra])
    y = [labels(train_rows, k, v) for k, v in
         [("articleType", classes), ("subCategory", subs), ("gender", genders), ("baseColour", colours)]]
    y_main = labels(main_rows, "articleType", classes)
    print(f"train {len(x_train)} images, held-out {held.sum()} of {len(main_rows)}, {len(classes)} types", flush=True)

    # Class-balanced sampling: weight 1/sqrt(count) tames the extra set's T-shirt flood.
    counts = torch.bincount(y[0], minlength=len(classes)).float()
    weights = counts[y[0]].rsqrt()
    steps_per_epoch = len(x_train) // args.batch

    model = Net(len(classes), len(subs), len(genders), len(colours)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
        pct_start=min(0.9, args.warmup_epochs / args.epochs)
    )
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    gen = torch.Generator().manual_seed(args.seed)

    ema = (torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema), use_buffers=True)
        if args.ema > 0 else None)

    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    start_epoch, history = 0, []
    if os.path.exists(ckpt_path) and not args.bench:
        ck = torch.load(ckpt_path, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"])
        start_epoch, history = ck["epoch"], ck["history"]
        if ema is not None and "ema" in ck:
            ema.load_state_dict(ck["ema"])
        total = args.epochs * steps_per_epoch
        if sched.total_steps != total:
            # Resumed with another --epochs: keep the warm-up, stretch or shrink the annealing.
            sched.total_steps = total
            sched._schedule_phases[-1]["end_step"] = total - 1
            print(f"schedule now ends after {args.epochs} epochs", flush=True)
        print(f"resumed after epoch {start_epoch}", flush=True)
    elif args.init:
        model.load_state_dict(torch.load(args.init, weights_only=False)["model"])
        if ema is not None:
            ema.module.load_state_dict(model.state_dict())
        print(f"initialised from {args.init}", flush=True)

    t_start = time.time()
    for epoch in range(start_epoch, args.epochs):
        model.train()
        idx = torch.multinomial(weights, steps_per_epoch * args.batch, replacement=True, generator=gen)
        t0, seen, loss_sum = time.time(), 0, 0.0
        for s in range(steps_per_epoch):
            b = idx[s * args.batch : (s + 1) * args.batch]
            xb = augment(to_input(torch.from_numpy(x_train[b.numpy()]), mean, std), gen)
            perm, lam = torch.arange(len(b)), torch.ones(len(b))
            if args.cutmix > 0:
                xb, perm, lam = cutmix(xb, gen, args.cutmix)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                out = model(xb, args.cosine_scale)
            out = [o.float() for o in out]
            margin = args.cosine_scale * args.margin if args.cosine_scale > 0 else 0.0
            loss = mixed_ce(out[0], y[0][b], perm, lam, margin)
            loss = loss + args.aux * sum(mixed_ce(o, t[b], perm, lam) for o, t in zip(out[1:], y[1:]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update_parameters(model)
            seen += len(b)
            loss_sum += loss.item()
            if s % 20 == 0:
                rate = seen / (time.time() - t0)
                print(f"epoch {epoch + 1}/{args.epochs} step {s}/{steps_per_epoch} loss {loss_sum / (s + 1):.3f} "
                      f"{rate:.1f} img/s lr {sched.get_last_lr()[0]:.2e}", flush=True)
            if args.bench and s == 20:
                print(f"bench {tag} batch {args.batch}: {rate:.1f} img/s")
                return
        rec = {"epoch": epoch + 1, "loss": loss_sum / steps_per_epoch, "seconds": time.time() - t0}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            feats = embed(ema.module if ema is not None else model, x_main, mean, std)
            rec["val_p10"] = knn_precision(feats, y_main, torch.from_numpy(held))
        history.append(rec)
        print(json.dumps(rec), flush=True)
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "epoch": epoch + 1, "history": history,
                    **({"ema": ema.state_dict()} if ema is not None else {})}, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
        export(ema.module if ema is not None else model, classes, args, {"history": history},
               os.path.join(args.out, "lookbook-fashion-resnet50.safetensors"))
    print(f"done in {time.time() - t_start:.0f}s; history {json.dumps(history)}", flush=True)


if __name__ == "__main__":
    main()

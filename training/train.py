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
import io
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

from photos import load_image, read_catalogue  # noqa: F401 (re-exported for the tests)

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


def augment(x, gen, degrade=0.0, thumbs=None):
    """Flips, shifts, mild zoom and brightness/contrast; no hue change (colour is a label).

    With probability `degrade` a photo is also shrunk to thumbnail size (54 to 80 pixels high)
    and scaled back up, so full-size photos look like the 60x80 ones sometimes: the network then
    cannot learn "blurry means a rare type" from the thumbnail-only catalogues. Photos flagged in
    `thumbs` (a CPU bool tensor) are thumbnails already and are not shrunk again.
    """
    n, dev = x.shape[0], x.device

    def rand(*shape):
        return torch.rand(*shape, generator=gen).to(dev)

    if degrade > 0:
        h, w = x.shape[2], x.shape[3]
        hit = torch.rand(n, generator=gen) < degrade
        if thumbs is not None:
            hit &= ~thumbs
        if hit.any():
            sel = hit.nonzero().flatten().to(dev)
            th = int(54 + torch.randint(0, 27, (1,), generator=gen).item())
            small = F.interpolate(x[sel], size=(th, th * 3 // 4), mode="bilinear", antialias=True,
                                  align_corners=False)
            x = x.clone()
            x[sel] = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    flip = rand(n) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    scale = 1.0 + (rand(n) - 0.5) * 0.3
    tx = (rand(n) - 0.5) * 0.25
    ty = (rand(n) - 0.5) * 0.25
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = scale
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # Pad with the photo's white background (normalised value of 1.0) rather than black.
    white = ((1.0 - torch.tensor(MEAN)) / torch.tensor(STD)).view(1, 3, 1, 1).to(dev)
    x = F.grid_sample(x - white, grid, padding_mode="zeros", align_corners=False) + white
    b = 1.0 + (rand(n, 1, 1, 1) - 0.5) * 0.3
    return (x * b).contiguous(memory_format=torch.channels_last)


def cutmix(x, gen, prob):
    """With probability `prob`, paste a random box of another photo in the batch over each photo.

    Returns the mixed batch, the partner of each photo and the share of the photo that is still
    its own (1.0 where nothing was pasted), so the loss can weigh both labels by area.
    """
    n, _, h, w = x.shape
    perm = torch.randperm(n, generator=gen)
    lam = torch.ones(n)
    src = x[perm.to(x.device)]
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
        out[i, :, top : top + bh, left : left + bw] = src[i, :, top : top + bh, left : left + bw]
        lam[i] = 1.0 - bh * bw / (h * w)
    return out.contiguous(memory_format=torch.channels_last), perm.to(x.device), lam.to(x.device)


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
    """L2-normalised pooled features of a uint8 NHWC array or tensor, on the model's device."""
    model.eval()
    dev = mean.device
    out = []
    for i in range(0, len(xs), bs):
        xb = xs[i : i + bs]
        xb = (torch.from_numpy(xb) if isinstance(xb, np.ndarray) else xb).to(dev)
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            f = model.features(to_input(xb, mean, std))
        out.append(F.normalize(f.float(), dim=1))
    model.train()
    return torch.cat(out)


def knn_precision(feats, labels, query_mask, k=10, per_query=False):
    """P@k by article type: queries are held-out items, the gallery is the whole catalogue."""
    q = feats[query_mask]
    sims = q @ feats.T
    qi = torch.nonzero(query_mask).flatten()
    sims[torch.arange(len(qi)), qi] = -2.0  # never the query itself
    top = sims.topk(k, dim=1).indices
    hits = (labels[top] == labels[qi][:, None]).float().mean(1)
    return hits if per_query else hits.mean().item()


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


def load_exported(model, path, classes):
    """Loads an exported backbone (f16 safetensors with batch norm unfolded) into `model`.

    The classifier rows are matched by class name, so a file trained on other data still
    starts every class it knows; the auxiliary heads are not exported and start fresh.
    """
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        sd = {k: f.get_tensor(k).float() for k in f.keys()}
    theirs = json.loads(meta.get("lookbook.classes", "[]"))
    own = model.backbone.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked") and not k.startswith("fc.")]
    if missing:
        raise SystemExit(f"{path}: not a lookbook ResNet50 export (no tensor {missing[0]})")
    fc_w, fc_b = own["fc.weight"].clone(), own["fc.bias"].clone()
    pos = {c: i for i, c in enumerate(theirs)}
    kept = 0
    for i, c in enumerate(classes):
        if c in pos and "fc.weight" in sd:
            fc_w[i] = sd["fc.weight"][pos[c]]
            fc_b[i] = sd["fc.bias"][pos[c]]
            kept += 1
    sd["fc.weight"], sd["fc.bias"] = fc_w, fc_b
    model.backbone.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    print(f"{path}: backbone loaded, {kept} of {len(classes)} classes matched by name", flush=True)


def set_name(root):
    """A catalogue's short name: `../shared/data/fashion-products-more` is `more`, the base set `main`."""
    base = os.path.basename(os.path.normpath(root))
    return base.split("fashion-products-", 1)[1] if base.startswith("fashion-products-") else base


def load_catalogues(args):
    """Rows (dicts with set, id and the label columns), uint8 NHWC photos and a thumbnail flag.

    From `--pack` (see pack.py) or from the catalogue folders (`--data`, `--extra`), cached.
    Thumbnails (smaller than the input) are upscaled bilinearly, as lookbook's own
    preprocessing would upscale them.
    """
    h, w = args.height, args.width
    if args.pack:
        z = np.load(args.pack)
        data, offs = z["data"], z["offsets"]
        rows = json.loads(bytes(z["rows"]).decode())
        x = np.zeros((len(rows), h, w, 3), np.uint8)
        small = np.zeros(len(rows), bool)
        for i in range(len(rows)):
            img = Image.open(io.BytesIO(data[offs[i] : offs[i + 1]].tobytes())).convert("RGB")
            if img.size != (w, h):
                small[i] = img.size[1] < h
                img = img.resize((w, h), Image.BILINEAR)
            x[i] = np.asarray(img)
        return rows, x, small
    tag = f"{h}x{w}"
    cache_dir = args.cache_dir or args.out
    rows, xs, small = [], [], []
    for k, root in enumerate([args.data] + args.extra):
        name = "main" if k == 0 else set_name(root)
        cat = read_catalogue(root)
        cache = "cache-main" if k == 0 else ("cache-extra" if k == 1 else f"cache-{name}")
        xs.append(build_cache(cat, h, w, os.path.join(cache_dir, f"{cache}-{tag}.npz")))
        for pid, path, r in cat:
            rows.append({"set": name, "id": pid, **{key: r.get(key, "") for key in LABEL_KEYS}})
            with Image.open(path) as im:
                small.append(im.size[1] < h)
    return rows, np.concatenate(xs), np.array(small, bool)


LABEL_KEYS = ("articleType", "subCategory", "gender", "baseColour")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="catalogue whose held-out split is validation")
    ap.add_argument("--extra", action="append", default=[], help="training-only catalogues")
    ap.add_argument("--pack", help="a file from pack.py instead of --data/--extra")
    ap.add_argument("--train-sets", default="", help="comma-separated set names to train on (default: all)")
    ap.add_argument("--out", default="training/run")
    ap.add_argument("--height", type=int, default=112)
    ap.add_argument("--width", type=int, default=84)
    ap.add_argument("--epochs", type=int, default=14)
    ap.add_argument("--epoch-size", type=int, default=0, help="photos per epoch (default: the training set's size)")
    ap.add_argument("--warmup-epochs", type=float, default=4.5, help="one-cycle warm-up length")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--aux", type=float, default=0.3, help="weight of the auxiliary heads")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--init", help="start from this checkpoint.pt's weights (a second stage)")
    ap.add_argument("--init-weights", help="start the backbone and classifier from an exported "
                    "lookbook-fashion-resnet50.safetensors (a fine-tune of a shipped model; the "
                    "auxiliary heads start fresh)")
    ap.add_argument("--cache-dir", help="where the resized-photo caches live (default: --out)")
    ap.add_argument("--cosine-scale", type=float, default=0.0, help="> 0: cosine classifier with this scale")
    ap.add_argument("--margin", type=float, default=0.0, help="additive cosine margin (with --cosine-scale)")
    ap.add_argument("--cutmix", type=float, default=0.0, help="share of photos that get a CutMix box")
    ap.add_argument("--ema", type=float, default=0.0, help="> 0: keep an EMA of the weights (this decay per step); "
                    "validate and export the EMA")
    ap.add_argument("--degrade", type=float, default=0.0,
                    help="share of full-size photos shrunk to thumbnail size and back each step")
    ap.add_argument("--small-weight", type=float, default=1.0, help="sampling weight of thumbnail photos")
    ap.add_argument("--rare-below", type=int, default=100,
                    help="report P@10 separately for types with fewer training photos than this in the "
                         "shipped recipe's data (main + extra)")
    ap.add_argument("--eval-every", type=int, default=3, help="validation P@10 every N epochs")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--device", default="auto", help="auto (cuda when present), cpu or cuda")
    ap.add_argument("--bench", action="store_true", help="time 20 steps and exit")
    args = ap.parse_args()
    if not args.pack and not args.data:
        ap.error("give --data (and --extra) or --pack")

    torch.manual_seed(args.seed)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                       else ("cpu" if args.device == "auto" else args.device))
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    os.makedirs(args.out, exist_ok=True)

    rows, x_all, small_all = load_catalogues(args)
    is_main = np.array([r["set"] == "main" for r in rows])
    held_all = np.array([r["set"] == "main" and is_held_out(r["id"]) for r in rows])
    wanted = set(filter(None, args.train_sets.split(","))) or {r["set"] for r in rows}
    train_mask = np.array([r["set"] in wanted for r in rows]) & ~held_all
    train_rows = [r for r, t in zip(rows, train_mask) if t]
    main_rows = [r for r, m in zip(rows, is_main) if m]
    used = main_rows + train_rows
    classes = sorted({r["articleType"] for r in used})

    def vocab(key):
        return sorted({r[key] for r in used})

    subs, genders, colours = vocab("subCategory"), vocab("gender"), vocab("baseColour")

    def labels(rs, key, vals):
        idx = {v: i for i, v in enumerate(vals)}
        return torch.tensor([idx[r[key]] for r in rs])

    x_main = x_all[is_main]
    held = held_all[is_main]
    x_train = x_all[train_mask]
    small = torch.from_numpy(small_all[train_mask])
    y = [labels(train_rows, k, v) for k, v in
         [("articleType", classes), ("subCategory", subs), ("gender", genders), ("baseColour", colours)]]
    y_main = labels(main_rows, "articleType", classes)
    base = [r["articleType"] for r in rows if r["set"] in ("main", "extra") and not (r["set"] == "main" and is_held_out(r["id"]))]
    base_count = {c: base.count(c) for c in set(base)}
    rare = torch.tensor([base_count.get(r["articleType"], 0) < args.rare_below for r in main_rows])
    print(f"train {len(x_train)} images ({int(small.sum())} thumbnails) from {sorted(wanted)}, held-out "
          f"{held.sum()} of {len(main_rows)} ({int(rare[torch.from_numpy(held)].sum())} of rare types), "
          f"{len(classes)} types, device {dev}", flush=True)

    # Class-balanced sampling: weight 1/sqrt(count) tames the extra set's T-shirt flood.
    counts = torch.bincount(y[0], minlength=len(classes)).float()
    weights = counts[y[0]].rsqrt() * torch.where(small, args.small_weight, 1.0)
    steps_per_epoch = (args.epoch_size or len(x_train)) // args.batch

    model = Net(len(classes), len(subs), len(genders), len(colours)).to(dev, memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd,
                            **({"fused": True} if dev.type == "cuda" else {}))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
        pct_start=min(0.9, args.warmup_epochs / args.epochs)
    )
    mean = torch.tensor(MEAN).view(1, 3, 1, 1).to(dev)
    std = torch.tensor(STD).view(1, 3, 1, 1).to(dev)
    gen = torch.Generator().manual_seed(args.seed)
    # On a GPU the whole training set lives there as uint8 (about 28 KB a photo at 112x84).
    x_src = torch.from_numpy(x_train).to(dev) if dev.type == "cuda" else x_train
    y = [t.to(dev) for t in y]

    ema = (torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(args.ema), use_buffers=True)
        if args.ema > 0 else None)

    ckpt_path = os.path.join(args.out, "checkpoint.pt")
    start_epoch, history = 0, []
    if os.path.exists(ckpt_path) and not args.bench:
        ck = torch.load(ckpt_path, weights_only=False, map_location=dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"].cpu())
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
    elif args.init or args.init_weights:
        if args.init:
            model.load_state_dict(torch.load(args.init, weights_only=False, map_location=dev)["model"])
        else:
            load_exported(model, args.init_weights, classes)
        if ema is not None:
            ema.module.load_state_dict(model.state_dict())
        print(f"initialised from {args.init or args.init_weights}", flush=True)

    t_start = time.time()
    rate = 0.0
    for epoch in range(start_epoch, args.epochs):
        model.train()
        idx = torch.multinomial(weights, steps_per_epoch * args.batch, replacement=True, generator=gen)
        t0, seen = time.time(), 0
        loss_sum = torch.zeros((), device=dev)
        for s in range(steps_per_epoch):
            b = idx[s * args.batch : (s + 1) * args.batch]
            xb = x_src[b.to(dev)] if dev.type == "cuda" else torch.from_numpy(x_src[b.numpy()])
            # Thumbnails are never degraded further: they already look like one.
            xb = augment(to_input(xb, mean, std), gen, args.degrade, small[b])
            b = b.to(dev)
            perm, lam = torch.arange(len(b), device=dev), torch.ones(len(b), device=dev)
            if args.cutmix > 0:
                xb, perm, lam = cutmix(xb, gen, args.cutmix)
            with torch.autocast(dev.type, dtype=torch.bfloat16):
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
            loss_sum += loss.detach()
            if s % 50 == 0 or (args.bench and s == 20):
                rate = seen / (time.time() - t0)
                print(f"epoch {epoch + 1}/{args.epochs} step {s}/{steps_per_epoch} loss "
                      f"{loss_sum.item() / (s + 1):.3f} {rate:.1f} img/s lr {sched.get_last_lr()[0]:.2e}", flush=True)
            if args.bench and s == 20:
                print(f"bench {args.height}x{args.width} batch {args.batch}: {rate:.1f} img/s")
                return
        rec = {"epoch": epoch + 1, "loss": loss_sum.item() / steps_per_epoch, "seconds": time.time() - t0}
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            feats = embed(ema.module if ema is not None else model, x_main, mean, std).cpu()
            hits = knn_precision(feats, y_main, torch.from_numpy(held), per_query=True)
            rec["val_p10"] = hits.mean().item()
            rare_q = rare[torch.from_numpy(held)]
            if rare_q.any():
                rec["val_p10_rare"] = hits[rare_q].mean().item()
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

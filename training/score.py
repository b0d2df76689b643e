"""Score exported weights on the held-out split: P@10 overall and on the rare types.

    python training/score.py --data ../shared/data/fashion-products \
        --extra ../shared/data/fashion-products-extra models/lookbook-fashion-resnet50.safetensors

Photos are read from the catalogue and resized with the recipe's arithmetic (the same as
lookbook's preprocessing), so the overall figure matches `lookbook eval` to about the third
decimal. Rare types are those with fewer than --rare-below photos in the shipped recipe's
training data (the catalogue's training split plus --extra), fixed whatever a model trained on.
"""
import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from safetensors.torch import load_file

from photos import load_image, read_catalogue
from train import MEAN, STD, is_held_out, knn_precision


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", nargs="+")
    ap.add_argument("--data", required=True)
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("--rare-below", type=int, default=100)
    args = ap.parse_args()
    rows = read_catalogue(args.data)
    extra = [r for d in args.extra for r in read_catalogue(d)]
    held = torch.tensor([is_held_out(pid) for pid, _, _ in rows])
    base = [r["articleType"] for (pid, _, r) in rows if not is_held_out(pid)] + [r["articleType"] for _, _, r in extra]
    count = {t: base.count(t) for t in set(base)}
    types = sorted({r["articleType"] for _, _, r in rows})
    labels = torch.tensor([types.index(r["articleType"]) for _, _, r in rows])
    rare = torch.tensor([count.get(r["articleType"], 0) < args.rare_below for _, _, r in rows])
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    for path in args.weights:
        sd = {k: v.float() for k, v in load_file(path).items()}
        with open(path, "rb") as f:
            meta = json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]
        h, w = int(meta.get("lookbook.input_height", 224)), int(meta.get("lookbook.input_width", 224))
        net = torchvision.models.resnet50(num_classes=sd["fc.weight"].shape[0])
        net.load_state_dict(sd)
        net.fc = torch.nn.Identity()
        net.eval()
        x = np.stack([load_image(p, h, w) for _, p, _ in rows])
        feats = []
        with torch.no_grad():
            for i in range(0, len(x), 64):
                xb = torch.from_numpy(x[i : i + 64]).permute(0, 3, 1, 2).float() / 255.0
                feats.append(F.normalize(net((xb - mean) / std), dim=1))
        hits = knn_precision(torch.cat(feats), labels, held, per_query=True)
        rq = rare[held]
        print(json.dumps({"weights": path, "p10": round(hits.mean().item(), 4),
                          "p10_rare": round(hits[rq].mean().item(), 4), "rare_queries": int(rq.sum()),
                          "p10_common": round(hits[~rq].mean().item(), 4)}), flush=True)


if __name__ == "__main__":
    main()

"""Pack the training catalogues into one small file, for training on a machine without `../shared`.

Every photo is resized once with the recipe's own arithmetic (`train.load_image`: cover-resize
and centre-crop, bilinear) and stored as a JPEG of that size; 60x80 thumbnails stay at their own
size, so the trainer (not this script) decides how they are upscaled. Labels travel with them.
The output is a `.npz` of byte strings plus a JSON table of rows:

    python training/pack.py --out training/pack.npz \
        --set main=../shared/data/fashion-products --set extra=../shared/data/fashion-products-extra \
        --set more=../shared/data/fashion-products-more --set small=../shared/data/fashion-products-small

`train.py --pack training/pack.npz` reads it instead of the catalogues.
"""
import argparse
import io
import json
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image

from photos import load_image, read_catalogue

KEYS = ("articleType", "subCategory", "gender", "baseColour")


def encode(job):
    path, h, w, quality = job
    src = Image.open(path)
    if src.size[0] * 4 <= w * 3 + 4 and src.size[1] <= h:  # a thumbnail: keep its own size
        arr = load_image(path, src.size[1], src.size[1] * 3 // 4)
    else:
        arr = load_image(path, h, w)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality, subsampling=2)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", action="append", required=True, help="NAME=DIR (a catalogue with styles.csv)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--height", type=int, default=112)
    ap.add_argument("--width", type=int, default=84)
    ap.add_argument("--quality", type=int, default=92)
    args = ap.parse_args()

    rows, jobs = [], []
    for spec in args.set:
        name, root = spec.split("=", 1)
        for pid, path, r in read_catalogue(root):
            rows.append({"set": name, "id": pid, **{k: r.get(k, "") for k in KEYS}})
            jobs.append((path, args.height, args.width, args.quality))
    with ProcessPoolExecutor() as pool:
        blobs = list(pool.map(encode, jobs, chunksize=64))
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    np.savez(args.out, data=data, offsets=offsets, rows=np.frombuffer(json.dumps(rows).encode(), np.uint8))
    print(f"{len(rows)} photos, {os.path.getsize(args.out) / 2**20:.1f} MiB -> {args.out}")


if __name__ == "__main__":
    main()

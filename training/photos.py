"""Reading catalogues and resizing photos, shared by train.py and pack.py (no torch needed)."""
import csv
import os

import numpy as np
from PIL import Image


def read_catalogue(root):
    """(id, photo path, CSV row) for every row whose photo exists."""
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

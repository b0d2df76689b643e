"""Three more look-alike levers without retraining (issue 23), measured outside lookbook:

    .bench-venv/bin/python measure/levers_backbone.py full.db models/lookbook-fashion-resnet50.safetensors \
        ../shared/data/fashion-products

1. The model's own classifier: each product's class probabilities, softmax(16 cos(f, w_c) / T)
   over the 142 types of the cosine `fc`, L2-normalised and appended to the stored vector with
   weight lam (or ranked alone).
2. Layer 3: the average- or GeM-pooled 1024-d output of the third stage, L2-normalised and
   appended to the last stage's with weight lam (torch, the photos preprocessed as lookbook
   does: `training/photos.py`).
3. (Not here: a larger input at test time; rewrite the file's `lookbook.input_height` and
   `lookbook.input_width` metadata, `lookbook embed --weights` it into a copy of the catalogue
   and run `lookbook eval`.)

Each prints held-out P@10 by articleType, macro over types and on rare types, plain and with the
shipped query expansion (5 neighbours, cosine cubed), on the protocol of `measure/levers.py`.
About three minutes on two cores. Not part of the test suite.
"""
import sys

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 2)[0] + "/training")
db, weights, data = sys.argv[1], sys.argv[2], sys.argv[3]
exec(open(__file__.rsplit("/", 1)[0] + "/levers.py").read().split('print("plain"')[0].replace(
    "sys.argv[1] if len(sys.argv) > 1 else 'catalog.db'", "db"))
from safetensors.numpy import load_file


def unit(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def show(name, V):
    a, b = evalp(V), evalp(V, True)
    print(f"{name}: P@10 {a[0]:.3f} macro {a[1]:.3f} rare {a[2]:.3f} | with qe5 {b[0]:.3f} {b[1]:.3f} {b[2]:.3f}", flush=True)


show("stored vectors", X)
W = unit(load_file(weights)["fc.weight"].astype(np.float64))
for T in [1, 2, 4]:
    Z = X @ W.T * 16 / T
    P = np.exp(Z - Z.max(1, keepdims=True))
    P = unit(P / P.sum(1, keepdims=True))
    show(f"class probabilities alone, T {T}", P)
    for lam in [0.3, 0.5, 1.0]:
        show(f"vector + {lam} x class probabilities, T {T}", unit(np.hstack([X, lam * P])))

import torch
import torchvision
from safetensors.torch import load_file as load_torch
from photos import load_image, read_catalogue
from train import MEAN, STD

rows = {int(pid): p for pid, p, _ in read_catalogue(data)}
sd = {k: v.float() for k, v in load_torch(weights).items()}
net = torchvision.models.resnet50(num_classes=sd["fc.weight"].shape[0])
net.load_state_dict(sd)
net.eval()
out = {}
net.layer3.register_forward_hook(lambda m, i, o: out.__setitem__("l3", o))
net.layer4.register_forward_hook(lambda m, i, o: out.__setitem__("l4", o))
mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
x = np.stack([load_image(rows[int(i)], 112, 84) for i in ids])
l3, g3, l4 = [], [], []
with torch.no_grad():
    for i in range(0, len(x), 64):
        net((torch.from_numpy(x[i : i + 64]).permute(0, 3, 1, 2).float() / 255.0 - mean) / std)
        l3.append(out["l3"].mean((2, 3)))
        g3.append(out["l3"].clamp(min=1e-6).pow(3).mean((2, 3)).pow(1 / 3))
        l4.append(out["l4"].mean((2, 3)))
l3, g3, l4 = (unit(torch.cat(v).double().numpy()) for v in (l3, g3, l4))
show("last stage, recomputed in torch", l4)
show("layer 3 alone, average", l3)
for name, f in [("average", l3), ("GeM 3", g3)]:
    for lam in [0.2, 0.35, 0.5, 0.7]:
        show(f"last stage + {lam} x layer 3 ({name})", unit(np.hstack([l4, lam * f])))

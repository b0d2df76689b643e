"""Fast checks of the training recipe (stdlib unittest, CPU, seconds).

    python -m unittest discover -s training -v

They need the pinned requirements (torch), which lookbook's Rust test suite does not, so CI's
`cargo test` does not run them; run them before changing `train.py`.
"""
import os
import subprocess
import sys
import tempfile
import unittest

import torch
import torch.nn.functional as F
from safetensors import safe_open

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINI = os.path.join(ROOT, "tests", "fixtures", "mini")


class Split(unittest.TestCase):
    def test_matches_rust(self):
        # The same values are asserted in src/sample.rs.
        self.assertEqual(train.splitmix64(0), 0xE220A8397B1DCDAF)
        ids = [1580, 1584, 1614, 1635, 1636, 1637, 1638, 1639]
        self.assertEqual([i for i in ids if train.is_held_out(i)], [1580, 1638, 1639])


class Losses(unittest.TestCase):
    def test_mixed_ce_without_mixing_is_smoothed_ce(self):
        g = torch.Generator().manual_seed(1)
        logits, target = torch.randn(6, 5, generator=g), torch.tensor([0, 1, 2, 3, 4, 0])
        perm, lam = torch.arange(6), torch.ones(6)
        want = F.cross_entropy(logits, target, label_smoothing=0.1)
        self.assertAlmostEqual(train.mixed_ce(logits, target, perm, lam).item(), want.item(), places=5)
        # With a margin: the plain CosFace form, the true class's logit lowered by scale * margin.
        margin = logits - 1.6 * F.one_hot(target, 5)
        want = F.cross_entropy(margin, target, label_smoothing=0.1)
        self.assertAlmostEqual(train.mixed_ce(logits, target, perm, lam, 1.6).item(), want.item(), places=5)

    def test_mixed_ce_weighs_both_labels_by_area(self):
        # Two photos with the same logits; the first kept 25 % of itself and got 75 % of the second.
        logits = torch.tensor([[2.0, 0.0, -1.0]]).repeat(2, 1)
        target, perm, lam = torch.tensor([0, 2]), torch.tensor([1, 0]), torch.tensor([0.25, 1.0])
        logp = F.log_softmax(logits[0], dim=0)
        soft_a = 0.9 * torch.tensor([0.25, 0.0, 0.75]) + 0.1 / 3
        soft_b = 0.9 * torch.tensor([0.0, 0.0, 1.0]) + 0.1 / 3
        want = (-(soft_a * logp).sum() - (soft_b * logp).sum()) / 2
        self.assertAlmostEqual(train.mixed_ce(logits, target, perm, lam).item(), want.item(), places=5)

    def test_cutmix_pastes_a_box_and_reports_its_area(self):
        g = torch.Generator().manual_seed(3)
        x = torch.stack([torch.full((3, 8, 6), float(i)) for i in range(4)])  # four distinct photos
        out, perm, lam = train.cutmix(x, g, 1.0)
        self.assertTrue(bool((lam < 1).any()), lam)
        for i in range(4):
            pasted = out[i] != x[i]
            self.assertAlmostEqual(1.0 - lam[i].item(), pasted.any(0).float().mean().item(), places=5)
            self.assertTrue(bool((out[i][pasted] == float(perm[i])).all()))  # the partner's pixels
        same, _, lam0 = train.cutmix(x, g, 0.0)
        self.assertTrue(torch.equal(same, x) and bool((lam0 == 1).all()))


class Steps(unittest.TestCase):
    def test_loss_goes_down_on_a_fixed_batch(self):
        torch.manual_seed(0)
        net = train.Net(3, 2, 2, 2)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(6, 3, 32, 24, generator=g)
        y = torch.tensor([0, 1, 2, 0, 1, 2])
        perm, lam = torch.arange(6), torch.ones(6)
        losses = []
        for _ in range(8):
            out = net(x, 16.0)
            loss = train.mixed_ce(out[0], y, perm, lam, 1.6)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        self.assertLess(losses[-1], losses[0] * 0.8, losses)


class Recipe(unittest.TestCase):
    def run_recipe(self, out, epochs):
        cmd = [sys.executable, os.path.join(ROOT, "training", "train.py"), "--data", MINI, "--out", out,
               "--height", "32", "--width", "24", "--batch", "8", "--epochs", str(epochs),
               "--warmup-epochs", "1", "--cosine-scale", "16", "--margin", "0.1", "--cutmix", "0.5",
               "--ema", "0.9", "--eval-every", "1", "--threads", "2"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    def test_trains_resumes_and_exports_torchvision_names(self):
        with tempfile.TemporaryDirectory() as out:
            first = self.run_recipe(out, 1)
            self.assertIn('"val_p10"', first)
            second = self.run_recipe(out, 2)
            self.assertIn("resumed after epoch 1", second)
            path = os.path.join(out, "lookbook-fashion-resnet50.safetensors")
            with safe_open(path, "pt") as f:
                names = set(f.keys())
                meta = f.metadata()
                fc = f.get_tensor("fc.weight").float()
            for name in ["conv1.weight", "bn1.running_var", "layer4.2.conv3.weight", "layer1.0.downsample.0.weight"]:
                self.assertIn(name, names)
            self.assertFalse(any(n.startswith(("sub.", "gender.", "colour.")) for n in names))
            self.assertEqual(meta["lookbook.input_height"], "32")
            # The cosine classifier is exported as unit-length rows.
            self.assertTrue(torch.allclose(fc.norm(dim=1), torch.ones(fc.shape[0]), atol=1e-2))


if __name__ == "__main__":
    unittest.main()

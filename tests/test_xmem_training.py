"""XMem's segmentation training (the reference's pass and losses) and `xmem-traj train-xmem`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from xmem_traj.xmem.checkpoint import load_xmem
from xmem_traj.xmem.training import (
    bootstrap_share,
    bootstrapped_ce,
    clip_loss,
    dice_loss,
    mask_iou,
    segment_clip,
)

BIN = Path(sys.executable).parent


def test_losses_on_known_answers():
    assert bootstrap_share(0, start_warm=10, end_warm=20) == 1.0
    assert bootstrap_share(15, start_warm=10, end_warm=20) == pytest.approx(0.15 + 0.85 / 2)
    assert bootstrap_share(20, start_warm=10, end_warm=20) == pytest.approx(0.15)
    logits = torch.randn(2, 2, 8, 8)
    target = (torch.rand(2, 8, 8) > 0.5).long()
    assert bootstrapped_ce(logits, target, 1.0) == pytest.approx(
        float(F.cross_entropy(logits, target))
    )
    # The hardest quarter of each clip's 64 pixels, then the mean over the 2 clips.
    raw = (
        F.cross_entropy(logits, target, reduction="none")
        .flatten(1)
        .sort(dim=1, descending=True)
        .values
    )
    assert bootstrapped_ce(logits, target, 0.25) == pytest.approx(
        float(raw[:, :16].mean()), rel=1e-6
    )
    gt = torch.zeros(1, 8, 8)
    gt[0, :4] = 1
    assert dice_loss(gt, gt) == pytest.approx(1 - 65 / 65)  # perfect: 0
    assert dice_loss(1 - gt, gt) == pytest.approx(1 - 1 / 65)  # disjoint: ~1
    assert mask_iou(gt * 0.9, gt).item() == pytest.approx(1.0)
    assert mask_iou(torch.zeros(1, 8, 8), torch.zeros(1, 8, 8)).isnan().all()


def test_segment_clip_learns_one_clip():
    """The pass runs end to end (frame 0 given, the others from memory) and a few AdamW steps on
    one clip lower its loss: gradients reach the network through memory."""
    torch.manual_seed(0)
    net = load_xmem(None)
    frames = torch.randn(1, 3, 3, 32, 32)
    masks = torch.zeros(1, 3, 32, 32)
    masks[:, :, 8:24, 8:24] = 1
    out = segment_clip(net, frames, masks[:, 0])
    assert [lg.shape for lg in out.logits] == [(1, 2, 32, 32)] * 2
    assert [p.shape for p in out.probs] == [(1, 32, 32)] * 2
    opt = torch.optim.AdamW(net.parameters(), lr=1e-5, fused=True)  # the reference's
    losses = []
    for _ in range(4):
        loss = clip_loss(segment_clip(net, frames, masks[:, 0]), masks, 1.0)["total"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_train_xmem_cli_writes_loadable_weights(synth_root, tmp_path):
    out = tmp_path / "XMem-synth.pth"
    cmd = [
        str(BIN / "xmem-traj"),
        "train-xmem",
        "--dataroot",
        str(synth_root),
        "--out",
        str(out),
        "--steps",
        "2",
        "--clips-per-step",
        "1",
        "--eval-clips",
        "1",
        "--crop-size",
        "96",
        "--freeze",
        "key_encoder",
        "--no-progress",
        "--precision",
        "32",
        "--context-objects",
        "leader,signal",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "agent mask IoU on 1 held-out clips" in res.stdout
    summary = json.loads(Path(str(out) + ".json").read_text())
    assert summary["steps"] == 2 and summary["train_clips"] > 0
    assert set(summary["held_out_iou"]["after"]) == {"agent", "leader", "signal"}  # by kind
    trained, init = load_xmem(out).state_dict(), load_xmem(None).state_dict()
    assert trained.keys() == init.keys()
    changed = {k.split(".")[0] for k in trained if not torch.equal(trained[k], init[k])}
    assert changed == {"key_proj", "value_encoder", "decoder"}  # all but the frozen key encoder
    # A trained XMem is never overwritten.
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and "exists" in res.stderr and res.stderr.count("\n") == 1

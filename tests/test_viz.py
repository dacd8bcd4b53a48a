"""What `viz` draws: XMem run on the view the run's features read (the agent's crops by
default), its propagated mask of the agent, and that mask's IoU with the agent's box hull."""

from __future__ import annotations

import numpy as np

from conftest import tiny_config
from xmem_traj.data.agent_dataset import NuScenesAgentDataset
from xmem_traj.eval.viz import XMemVideo, xmem_video
from xmem_traj.inputs.xmem_input import make_backbone


def test_iou_reads_predicted_frames_with_the_agent_in_view():
    truth = np.zeros((4, 4, 4), bool)
    truth[:3, :2, :2] = True  # 4 pixels in frames 0-2; out of view in frame 3
    half = np.zeros((4, 4))
    half[:2, :] = 0.9  # 8 pixels above 0.5, 4 of them the agent's
    probs = [None, half, np.full((4, 4), 0.4), np.ones((4, 4))]
    video = XMemVideo(np.zeros((4, 3, 4, 4)), probs, truth, init_frame=0)
    assert video.iou(0) is None  # XMem has not started
    assert video.iou(1) == 0.5
    assert video.iou(2) == 0.0  # nothing above 0.5
    assert video.iou(3) is None  # the agent is not in view
    assert video.propagated_iou() == [0.5, 0.0]
    late = XMemVideo(video.frames, probs, truth, init_frame=1)
    assert late.propagated_iou() == [0.0]  # the given first mask is not XMem's work


def test_viz_runs_xmem_on_the_crops_the_features_read(synth_root, tmp_path):
    cfg = tiny_config(synth_root, tmp_path, crop_size=96)
    ds = NuScenesAgentDataset.from_config(
        cfg.data, synth_root, "v1.0-mini", "mini_val", image_size=cfg.xmem.image_size
    )
    backbone = make_backbone(cfg.resolved(world_file=True))
    i = next(k for k, rec in enumerate(ds.records) if rec.init_frame < ds.window_len - 1)
    rec = ds.records[i]
    video = xmem_video(backbone, ds, i, view="agent", crop_size=96)
    assert video.frames.shape == (ds.window_len, 3, 96, 96)
    assert all(p is None for p in video.probs[: rec.init_frame])
    assert all(p.shape == (96, 96) for p in video.probs[rec.init_frame :])
    assert video.iou(rec.init_frame) == 1.0  # the given mask, on the crop it was drawn for
    frame = xmem_video(backbone, ds, i, view="frame", crop_size=96)
    assert frame.frames.shape[2:] == (64, 128) and frame.iou(rec.init_frame) == 1.0

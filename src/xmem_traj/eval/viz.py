"""Pictures of a run: a bird's-eye view of past, true future and predicted modes over the map's
drivable area, beside what XMem saw of the target in the run's view (the agent's crops, or the
whole frames with --view frame; the crops with --view both), with XMem's propagated mask of
the agent and its IoU against the agent's box hull per frame."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..data.agent_dataset import NuScenesAgentDataset  # noqa: E402
from ..data.agent_frame import local_to_global  # noqa: E402
from ..data.maps import PIXELS_PER_METER  # noqa: E402
from ..data.videos import group_video, single_videos  # noqa: E402
from ..traj.datamodules import model_spec  # noqa: E402
from ..traj.prepare import PreparedData  # noqa: E402
from ..xmem.training import mask_iou  # noqa: E402
from .scoring import load_predictor, predict, road_snap, val_tensors  # noqa: E402


@dataclass
class XMemVideo:
    """What XMem saw of one target and what it made of it: the run's view (the agent's crops,
    or the whole camera frames), its propagated probability of the agent per frame, and the
    agent's projected box hull as the truth beside it."""

    frames: np.ndarray  # (T, 3, H, W) RGB in [0, 1]; zeros where the window has no frame
    probs: list  # per frame the agent's probability (H, W), None before XMem starts
    truth: np.ndarray  # (T, H, W) bool: the agent's box hull, empty where not in view
    init_frame: int

    def iou(self, t: int) -> float | None:
        """Mask IoU at frame t (probability > 0.5 against the hull); None where there is no
        prediction or the agent is not in view."""
        if self.probs[t] is None or not self.truth[t].any():
            return None
        prob, truth = torch.from_numpy(self.probs[t]), torch.from_numpy(self.truth[t])
        return float(mask_iou(prob[None], truth[None])[0])

    def propagated_iou(self) -> list[float]:
        """IoU of every frame after the given first mask (XMem's own work)."""
        ious = [self.iou(t) for t in range(self.init_frame + 1, len(self.probs))]
        return [v for v in ious if v is not None]


def xmem_video(
    backbone, ds: NuScenesAgentDataset, index: int, *, view: str, crop_size: int
) -> XMemVideo:
    """XMem run on one target's window as feature extraction runs it alone: the same frames
    or crops (data/videos.py) and masks, stepped by the backbone itself."""
    group = single_videos(ds.records, [index], view)[0]
    video = group_video(ds.records, group, ds.image_size, crop_size)
    probs: list = [None] * video["frames"].shape[0]

    def keep(t, step_probs):
        probs[t] = step_probs[0][1].float().cpu().numpy()

    device = next(backbone.network.parameters()).device
    with torch.no_grad():
        backbone(
            video["frames"][None].to(device),
            [video["init_masks"].to(device)],
            [video["init_frames"].tolist()],
            [video["frame_masks"].to(device)],
            on_step=keep,
        )
    truth = video["frame_masks"][0].numpy().astype(bool)
    return XMemVideo(video["frames"].numpy(), probs, truth, ds.records[index].init_frame)


def _draw_map(ax, mask: np.ndarray, centre: np.ndarray, radius: float = 60.0) -> None:
    """The drivable area (grey) within `radius` metres of `centre`, in global metres."""
    lo = np.maximum(((centre - radius) * PIXELS_PER_METER).astype(int), 0)
    hi = ((centre + radius) * PIXELS_PER_METER).astype(int)
    patch = mask[lo[1] : hi[1], lo[0] : hi[0]]
    if patch.size:
        (x0, y0), (h, w) = lo / PIXELS_PER_METER, patch.shape
        ax.imshow(
            patch,
            extent=(x0, x0 + w / PIXELS_PER_METER, y0, y0 + h / PIXELS_PER_METER),
            origin="lower",
            cmap="Greys",
            vmin=0,
            vmax=4,
            alpha=0.6,
            zorder=0,
        )


@dataclass
class Drawn:
    """One picture and the propagated-mask IoU of each of its frames after the first mask
    (empty where the run has no XMem)."""

    path: Path
    propagated_iou: list[float]


def render_examples(
    prepared: PreparedData, method: str, checkpoint: Path, *, count: int, out_dir: Path
) -> list[Drawn]:
    """PNGs of `count` val targets: BEV of past, true future and the checkpoint's modes,
    beside what XMem saw in the run's view (the agent's crops or the camera frames) with its
    propagated mask of the agent and that mask's IoU with the agent's box hull (when the run
    has XMem; else the camera frames)."""
    tensors = val_tensors(prepared, method)
    backbone = prepared.context.backbone
    expected = model_spec(prepared, method, "val").to_dict()
    model = load_predictor(checkpoint, backbone, expected=expected)
    pred, probs, gt, _ = predict(model, tensors, snap=road_snap(prepared))
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = prepared.val.dataset
    locations = prepared.val.targets.locations
    maps = prepared.context.drivable_maps(locations)
    drawn = []
    for i in np.linspace(0, len(ds) - 1, min(count, len(ds))).astype(int):
        rec = ds.records[i]
        video = None if backbone is None else _run_video(prepared, i)
        t_len = ds.window_len
        fig = plt.figure(figsize=(3 * t_len + 4, 4))
        mask = None if maps is None else maps.masks[locations[i]]
        _draw_bev(
            fig.add_subplot(1, t_len + 1, 1),
            tensors.tensors,
            i,
            mask,
            pred[i],
            probs[i],
            gt[i],
            rec,
        )
        frames = ds[i]["frames"].numpy() if video is None else video.frames
        for t in range(t_len):
            _draw_frame(
                fig.add_subplot(1, t_len + 1, t + 2),
                frames[t],
                None if video is None else video.probs[t],
                None if video is None else video.truth[t],
                _frame_title(rec, t, t_len, video),
            )
        fig.suptitle(f"{method}, {_xmem_name(prepared)}", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"{i:04d}_{rec.instance_token[:8]}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        drawn.append(Drawn(path, [] if video is None else video.propagated_iou()))
    return drawn


def _run_video(prepared: PreparedData, index: int) -> XMemVideo:
    cfg = prepared.cfg
    view = "frame" if cfg.experimental.view == "frame" else "agent"
    return xmem_video(
        prepared.context.backbone,
        prepared.val.dataset,
        index,
        view=view,
        crop_size=cfg.xmem.crop_size,
    )


def _xmem_name(prepared: PreparedData) -> str:
    """Which XMem drew the masks, in words."""
    cfg = prepared.cfg
    if prepared.context.backbone is None:
        return "no XMem in this run"
    if cfg.xmem.xmem_weights:
        return f"XMem {Path(cfg.xmem.xmem_weights).name}"
    return f"XMem random init (seed {cfg.optim.seed}): untrained, it follows nothing"


def _frame_title(rec, t: int, t_len: int, video: XMemVideo | None) -> str:
    title = f"{rec.camera} t{t - t_len + 1}"
    if t == rec.init_frame:
        return title + " (init mask)"
    iou = None if video is None else video.iou(t)
    return title if iou is None else f"{title} IoU {iou:.2f}"


def _draw_bev(ax, data: dict, i: int, mask, pred, probs, gt, rec) -> None:
    """Target i's map, past, true future and predicted modes (global metres)."""
    where = data["translation"][i, :2]
    if mask is not None:
        _draw_map(ax, mask, where.numpy())
    past = local_to_global(
        data["past"][i : i + 1], data["translation"][i : i + 1], data["rotation"][i : i + 1]
    )[0]
    ax.plot(*past[data["past_valid"][i]].T, "o-", color="0.4", label="past")
    ax.plot(*gt.T, "o-", color="tab:green", label="true future")
    for k in range(pred.shape[0]):
        ax.plot(
            *pred[k].T,
            "x--",
            color="tab:red",
            alpha=float(0.3 + 0.7 * probs[k]),
            label="predicted" if k == 0 else None,
        )
    ax.plot(*where, "k*", markersize=12)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title(f"{rec.category}\n{rec.instance_token[:8]} @ {rec.sample_token[:8]}", fontsize=8)
    ax.legend(fontsize=7)


def _draw_frame(ax, frame: np.ndarray, mask, truth, title: str) -> None:
    """A camera frame or crop (3, H, W) with XMem's probability of the agent over it in cyan
    (None: not yet) and the agent's box hull outlined in white (None: no XMem)."""
    ax.imshow(frame.transpose(1, 2, 0))
    if mask is not None:
        ax.imshow(np.ma.masked_less(mask, 0.1), cmap="winter_r", alpha=0.5, vmin=0, vmax=1)
    if truth is not None and truth.any():
        ax.contour(truth.astype(float), levels=[0.5], colors="white", linewidths=0.8)
    ax.set_title(title, fontsize=8)
    ax.axis("off")

"""Pictures of a run: a bird's-eye view of past, true future and predicted modes over the map's
drivable area, beside the camera window with XMem's predicted masks drawn over it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ..data.agent_dataset import NuScenesAgentDataset  # noqa: E402
from ..data.agent_frame import local_to_global  # noqa: E402
from ..data.frames import frame_masks, init_mask, load_frames, output_size  # noqa: E402
from ..data.maps import PIXELS_PER_METER  # noqa: E402
from ..traj.datamodules import model_spec  # noqa: E402
from ..traj.prepare import PreparedData  # noqa: E402
from .scoring import load_predictor, predict, road_snap, val_tensors  # noqa: E402


def xmem_masks(backbone, ds: NuScenesAgentDataset, index: int) -> list:
    """XMem run on one target's window (the backbone's own stepping) → its object probability
    per frame (None before it enters)."""
    rec = ds.records[index]
    size = output_size(rec, ds.image_size)
    frames = torch.from_numpy(load_frames(rec.frame_paths, size))
    out: list = [None] * frames.shape[0]

    def keep(t, probs):
        out[t] = probs[0][1].float().cpu().numpy()

    device = next(backbone.network.parameters()).device
    frames = frames.to(device)
    with torch.no_grad():
        backbone(
            frames[None],
            [torch.from_numpy(init_mask(rec, size))[None].to(device)],
            [[rec.init_frame]],
            [torch.from_numpy(frame_masks(rec, size))[None].to(device)],
            on_step=keep,
        )
    return out


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


def render_examples(
    prepared: PreparedData, method: str, checkpoint: Path, *, count: int, out_dir: Path
) -> list[Path]:
    """PNGs of `count` val targets: BEV of past, true future and the checkpoint's modes,
    beside the camera window with XMem's masks (when the run has XMem)."""
    tensors = val_tensors(prepared, method)
    backbone = prepared.context.backbone
    expected = model_spec(prepared, method, "val").to_dict()
    model = load_predictor(checkpoint, backbone, expected=expected)
    pred, probs, gt, _ = predict(model, tensors, snap=road_snap(prepared))
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = prepared.val.dataset
    locations = prepared.val.targets.locations
    maps = prepared.context.drivable_maps(locations)
    paths = []
    for i in np.linspace(0, len(ds) - 1, min(count, len(ds))).astype(int):
        rec, item = ds.records[i], ds[i]
        t_len = item["frames"].shape[0]
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
        masks = xmem_masks(backbone, ds, i) if backbone is not None else [None] * t_len
        for t in range(t_len):
            _draw_frame(
                fig.add_subplot(1, t_len + 1, t + 2),
                item["frames"][t],
                masks[t],
                f"{rec.camera} t{t - t_len + 1}" + (" (init mask)" if t == rec.init_frame else ""),
            )
        fig.tight_layout()
        path = out_dir / f"{i:04d}_{rec.instance_token[:8]}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


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


def _draw_frame(ax, frame, mask, title: str) -> None:
    """A camera frame (3, H, W) with XMem's mask of the agent over it (None: not yet)."""
    ax.imshow(frame.permute(1, 2, 0).numpy())
    if mask is not None:
        ax.imshow(np.ma.masked_less(mask, 0.1), cmap="autumn_r", alpha=0.55, vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
    ax.axis("off")

"""XMem inference speed, float32 and bfloat16, at the trajectory side's size and at 480p.

One run measures, per precision: a conv peak (decoder-sized 3×3 conv) in the same process;
the reference network through InferenceCore (what the fixtures test); the engine on the
inference copy (BatchNorm folded, channels-last, weights in the compute dtype) at each batch
size, with GFLOP/s (FlopCounterMode, 2 FLOPs per MAC) and % of the measured peak; and the
batching gain B=max vs B=1. --stages times the trunk (encode_key) and the decoder alone.
--accuracy compares bfloat16 with float32 on a moving-blob video: mask IoU and feature error.
--profile prints torch.profiler's operator table for the engine (first size, precision and
largest batch size given): where the time goes.

    python bench/xmem_bench.py                            # CPU, 2 threads, 144×256 and 480×854
    python bench/xmem_bench.py --stages
    python bench/xmem_bench.py --accuracy
    python bench/xmem_bench.py --profile --sizes 144x256 --precisions bf16 --batch-sizes 8
    python bench/xmem_bench.py --device cuda --threads 0 --json gpu.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from xmem_traj.xmem import BatchedInferenceCore, InferenceCore, load_xmem, object_features
from xmem_traj.xmem.network import owner_index
from xmem_traj.xmem.optimize import InferenceSettings, inference_copy

CONFIG = {"mem_every": 1, "top_k": 30, "max_mid_term_frames": 10, "min_mid_term_frames": 5}
DTYPES = {"32": torch.float32, "bf16": torch.bfloat16}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, seconds: float = 2.0, min_reps: int = 3) -> float:
    """Seconds per call, after two warm-up calls."""
    for _ in range(2):
        fn()
    sync(device)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or reps < min_reps:
        fn()
        reps += 1
    sync(device)
    return (time.perf_counter() - t0) / reps


def conv_peak(device, dtype) -> float:
    """GFLOP/s of a decoder-sized 3×3 conv (512→512 channels at 60×108), channels-last."""
    x = torch.randn(1, 512, 60, 108, device=device, dtype=dtype).contiguous(
        memory_format=torch.channels_last
    )
    conv = torch.nn.Conv2d(512, 512, 3, padding=1).to(
        device=device, dtype=dtype, memory_format=torch.channels_last
    )
    with torch.no_grad():
        return 2 * 512 * 512 * 9 * 60 * 108 / timed(lambda: conv(x), device) / 1e9


def blob_video(frames: int, h: int, w: int, device, seed: int = 0):
    """Smooth background and two moving blobs: images (T, 3, H, W) normalised-ish, labels
    (T, H, W)."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    images, labels = [], []
    for t in range(frames):
        img = np.stack([xx, yy, 0.5 + 0.2 * np.sin(6 * xx)]) + g.normal(0, 0.05, (3, h, w))
        lab = np.zeros((h, w), np.int64)
        for i, (cy, cx, col) in enumerate(((0.35, 0.3, (1.5, -1, 0)), (0.6, 0.65, (-1, 1.5, 1)))):
            inside = ((yy - cy - 0.01 * t) / 0.15) ** 2 + ((xx - cx - 0.02 * t) / 0.12) ** 2 < 1
            img[:, inside] = np.array(col)[:, None]
            lab[inside] = i + 1
        images.append(img)
        labels.append(lab)
    return (
        torch.tensor(np.stack(images), dtype=torch.float32, device=device),
        torch.tensor(np.stack(labels), device=device),
    )


def run_video(core_step, images, labels, autocast, frames: int):
    """Step a video; mask on frame 0 → per frame (prob, timed seconds)."""
    out = []
    for t in range(frames):
        t0 = time.perf_counter()
        with autocast():
            prob = core_step(images[t], labels[0] if t == 0 else None, t)
        out.append((prob, time.perf_counter() - t0))
    return out


def flops_per_frame(network, images, labels, frames: int) -> float:
    core = InferenceCore(network, CONFIG)
    core.set_all_labels([1, 2])
    counts = []
    for t in range(frames):
        with FlopCounterMode(display=False) as counter:
            core.step(images[t], labels[0] if t == 0 else None, [1, 2] if t == 0 else None)
        counts.append(counter.get_total_flops())
    return float(np.mean(counts[2:]))


def engine_seconds(network, images, labels, batch: int, frames: int, device, autocast) -> float:
    """Seconds per video-frame of the engine stepping `batch` videos (frames 2.. timed)."""
    engine = BatchedInferenceCore(network, CONFIG, batch_size=batch)
    for b in range(batch):
        engine.set_all_labels(b, [1, 2])
    times = []
    with torch.no_grad():
        for t in range(frames):
            x = images[t][None].expand(batch, -1, -1, -1).contiguous()
            sync(device)
            t0 = time.perf_counter()
            with autocast():
                engine.step(
                    x, [labels[0]] * batch if t == 0 else None, [[1, 2]] * batch if t == 0 else None
                )
            sync(device)
            times.append(time.perf_counter() - t0)
    return float(np.mean(times[2:])) / batch


def speed(args, device) -> dict:
    reference = load_xmem(None).to(device)
    results = {}
    for prec in args.precisions:
        dtype = DTYPES[prec]
        peak = conv_peak(device, dtype)
        copy = inference_copy(reference, InferenceSettings(dtype, channels_last=True))

        def autocast(bf16=prec == "bf16"):
            return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)

        print(f"\nprecision {prec}: measured conv peak {peak:.0f} GFLOP/s")
        print("| size | engine | s per video-frame | GFLOP/s | % of peak |\n|---|---|---|---|---|")
        for size in args.sizes:
            h, w = size
            images, labels = blob_video(args.frames, h, w, device)
            with torch.no_grad():
                gflop = flops_per_frame(reference, images, labels, args.frames) / 1e9
                core = InferenceCore(reference, CONFIG)
                core.set_all_labels([1, 2])
                steps = run_video(
                    lambda x, m, t, core=core: core.step(x, m, [1, 2] if t == 0 else None),
                    images,
                    labels,
                    autocast,
                    args.frames,
                )
            rows = {"InferenceCore, reference network": float(np.mean([s for _, s in steps[2:]]))}
            for b in args.batch_sizes:
                rows[f"engine B={b}, inference copy"] = engine_seconds(
                    copy, images, labels, b, args.frames, device, autocast
                )
            for name, sec in rows.items():
                rate = gflop / sec
                print(f"| {h}×{w} | {name} | {sec:.4f} | {rate:.0f} | {100 * rate / peak:.0f}% |")
            b_lo, b_hi = min(args.batch_sizes), max(args.batch_sizes)
            gain = (
                rows[f"engine B={b_lo}, inference copy"] / rows[f"engine B={b_hi}, inference copy"]
            )
            print(f"| {h}×{w} | B={b_hi} vs B={b_lo} | {gain:.2f}× faster per video-frame | | |")
            results[f"{prec} {h}x{w}"] = {
                "peak_gflops": peak,
                "gflop_per_frame": gflop,
                "seconds": rows,
                f"gain_B{b_hi}_vs_B{b_lo}": gain,
            }
    return results


def stages(args, device) -> dict:
    """Trunk (encode_key) and decoder alone: ms per frame and % of the conv peak."""
    reference = load_xmem(None).to(device)
    results = {}
    print(
        "| precision | size | B | trunk ms/frame | trunk % peak | decoder ms/frame (2 objects) "
        "| decoder % peak |"
    )
    print("|---|---|---|---|---|---|---|")
    for prec in args.precisions:
        dtype = DTYPES[prec]
        peak = conv_peak(device, dtype)
        net = inference_copy(reference, InferenceSettings(dtype, channels_last=True))
        for h, w in args.sizes:
            hp, wp = h + (-h) % 16, w + (-w) % 16
            for b in args.batch_sizes:
                img = torch.randn(b, 3, hp, wp, device=device, dtype=dtype)
                owner = owner_index([2] * b, device)
                with torch.no_grad():
                    with FlopCounterMode(display=False) as fc:
                        _, _, _, f16, f8, f4 = net.encode_key(img)
                    trunk_flops = fc.get_total_flops()
                    t_trunk = timed(lambda net=net, img=img: net.encode_key(img), device)
                    readout = torch.randn(
                        2 * b, net.value_dim, hp // 16, wp // 16, device=device, dtype=dtype
                    )
                    hidden = torch.randn(
                        2 * b, net.hidden_dim, hp // 16, wp // 16, device=device, dtype=dtype
                    )
                    with FlopCounterMode(display=False) as fc:
                        net.decoder(f16, f8, f4, hidden, readout, owner)
                    dec_flops = fc.get_total_flops()
                    decode = (net, f16, f8, f4, hidden, readout, owner)
                    t_dec = timed(lambda d=decode: d[0].decoder(*d[1:]), device)
                tp, dp = trunk_flops / t_trunk / 1e9 / peak, dec_flops / t_dec / 1e9 / peak
                print(
                    f"| {prec} | {h}×{w} | {b} | {1000 * t_trunk / b:.1f} | {100 * tp:.0f}% | "
                    f"{1000 * t_dec / b:.1f} | {100 * dp:.0f}% |"
                )
                results[f"{prec} {h}x{w} B={b}"] = {
                    "trunk_s": t_trunk / b,
                    "trunk_peak": tp,
                    "decoder_s": t_dec / b,
                    "decoder_peak": dp,
                }
    return results


def accuracy(args, device) -> dict:
    """bfloat16 (inference copy) vs float32 (reference) on a blob video: per-frame mask IoU
    of the argmax segmentation and relative error of the pooled features."""
    reference = load_xmem(None).to(device)
    copy = inference_copy(reference, InferenceSettings(torch.bfloat16, channels_last=True))
    results = {}
    for h, w in args.sizes:
        images, labels = blob_video(args.frames, h, w, device, seed=1)
        runs = {}
        for name, net, bf16 in (("32", reference, False), ("bf16", copy, True)):
            core = InferenceCore(net, CONFIG)
            core.set_all_labels([1, 2])
            probs, feats = [], []
            with torch.no_grad():
                for t in range(args.frames):
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                        prob = core.step(
                            images[t], labels[0] if t == 0 else None, [1, 2] if t == 0 else None
                        )
                    probs.append(prob.float().argmax(0))
                    f = object_features(
                        core.last_output,
                        ("hidden_pooled", "readout_pooled", "key_pooled"),
                        value_dim=net.value_dim,
                    )
                    feats.append(torch.cat(list(f.values()), 1))
            runs[name] = (probs, feats)
        ious, errs = [], []
        for t in range(1, args.frames):
            a, b = runs["32"][0][t], runs["bf16"][0][t]
            for obj in (1, 2):
                union = ((a == obj) | (b == obj)).sum().item()
                ious.append(((a == obj) & (b == obj)).sum().item() / union if union else 1.0)
            fa, fb = runs["32"][1][t], runs["bf16"][1][t]
            errs.append(((fb - fa).norm() / fa.norm()).item())
        print(
            f"{h}×{w}: bf16 vs fp32 mask IoU min {min(ious):.4f} mean {np.mean(ious):.4f}; "
            f"feature relative error median {np.median(errs):.4f} max {max(errs):.4f} "
            f"({args.frames} frames, 2 objects)"
        )
        results[f"{h}x{w}"] = {
            "iou_min": min(ious),
            "iou_mean": float(np.mean(ious)),
            "feature_rel_err_median": float(np.median(errs)),
            "feature_rel_err_max": max(errs),
        }
    return results


def profile_engine(args, device) -> dict:
    """torch.profiler over 3 engine steps (after 3 warm-up steps): the top operators by self
    time."""
    from torch.profiler import ProfilerActivity, profile

    (h, w), prec, batch = args.sizes[0], args.precisions[0], max(args.batch_sizes)
    net = inference_copy(
        load_xmem(None).to(device), InferenceSettings(DTYPES[prec], channels_last=True)
    )
    images, labels = blob_video(6, h, w, device)
    engine = BatchedInferenceCore(net, CONFIG, batch_size=batch)
    for b in range(batch):
        engine.set_all_labels(b, [1, 2])

    def step(t: int) -> None:
        x = images[t][None].expand(batch, -1, -1, -1).contiguous()
        engine.step(
            x, [labels[0]] * batch if t == 0 else None, [[1, 2]] * batch if t == 0 else None
        )

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=prec == "bf16"):
        for t in range(3):
            step(t)
        with profile(activities=activities) as prof:
            for t in range(3, 6):
                step(t)
            sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"{h}×{w}, precision {prec}, B={batch}, 3 steps:")
    print(prof.key_averages().table(sort_by=key, row_limit=15))
    return {"table": prof.key_averages().table(sort_by=key, row_limit=30)}


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument(
        "--threads", type=int, default=2, help="CPU threads; 0 leaves torch's default (default: 2)"
    )
    p.add_argument(
        "--sizes", nargs="+", default=["144x256", "480x854"], help="H×W (default: 144x256 480x854)"
    )
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    p.add_argument("--precisions", nargs="+", default=["32", "bf16"], choices=list(DTYPES))
    p.add_argument(
        "--frames", type=int, default=5, help="frames per video; the first 2 are not timed"
    )
    p.add_argument("--stages", action="store_true", help="trunk and decoder alone")
    p.add_argument("--accuracy", action="store_true", help="bf16 vs fp32 masks and features")
    p.add_argument("--profile", action="store_true", help="torch.profiler table of the engine")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes]
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{torch.get_num_threads()} CPU threads"
    )
    print(f"device {device} ({name}), 2 objects per video, XMem config {CONFIG}")
    mode = (
        stages
        if args.stages
        else accuracy
        if args.accuracy
        else profile_engine
        if args.profile
        else speed
    )
    result = mode(args, device)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"device": name, "args": {k: v for k, v in vars(args).items()}, "results": result},
                f,
                indent=1,
                default=str,
            )


if __name__ == "__main__":
    main()

"""XMem inference speed: InferenceCore vs the batched engine, with achieved GFLOP/s.

Measures in one run: seconds per frame of InferenceCore; the batched engine's seconds per
video-frame at each batch size; FLOPs per frame (torch's FlopCounterMode, 2 FLOPs per MAC);
and a conv/matmul peak measured in the same process, so the fraction of peak is honest.

    python bench/xmem_bench.py                       # CPU, 2 threads, 480×854, 2 objects
    python bench/xmem_bench.py --device cuda --dtype bf16
"""
from __future__ import annotations

import argparse
import json
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from xmem_traj.xmem import BatchedInferenceCore, InferenceCore, load_xmem


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic_video(frames: int, h: int, w: int, objects: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    images = torch.randn((frames, 3, h, w), generator=g).to(device)
    mask = torch.zeros((h, w), dtype=torch.long)
    for i in range(objects):
        y0, x0 = int(h * (0.2 + 0.3 * i)), int(w * (0.2 + 0.3 * i))
        mask[y0:y0 + h // 4, x0:x0 + w // 4] = i + 1
    return images, mask.to(device)


def measured_peak(device: torch.device, dtype: torch.dtype) -> dict[str, float]:
    """GFLOP/s of a large matmul and of a decoder-sized 3×3 conv on this device."""
    out = {}
    n = 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    x = torch.randn(1, 512, 60, 108, device=device, dtype=dtype)
    conv = torch.nn.Conv2d(512, 512, 3, padding=1).to(device=device, dtype=dtype)
    cases = {"matmul": (lambda: a @ b, 2 * n ** 3),
             "conv3x3": (lambda: conv(x), 2 * 512 * 512 * 9 * 60 * 108)}
    with torch.no_grad():
        for name, (fn, flops) in cases.items():
            for _ in range(3):
                fn()
            sync(device)
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < 2.0 or reps < 3:
                fn()
                reps += 1
            sync(device)
            out[name] = flops * reps / (time.perf_counter() - t0) / 1e9
    return out


def run_core(network, images, mask, objects, config, timed: range, device, autocast):
    core = InferenceCore(network, config)
    core.set_all_labels(list(range(1, objects + 1)))
    times = []
    for t in range(timed.stop):
        sync(device)
        t0 = time.perf_counter()
        with autocast():
            core.step(images[t], mask if t == 0 else None, list(range(1, objects + 1)) if t == 0 else None)
        sync(device)
        if t in timed:
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times)


def run_batched(network, images, mask, objects, config, batch: int, timed: range, device, autocast):
    engine = BatchedInferenceCore(network, config, batch_size=batch)
    labels = list(range(1, objects + 1))
    for b in range(batch):
        engine.set_all_labels(b, labels)
    times = []
    for t in range(timed.stop):
        frame = images[t][None].expand(batch, -1, -1, -1).contiguous()
        sync(device)
        t0 = time.perf_counter()
        with autocast():
            engine.step(frame, [mask] * batch if t == 0 else None,
                        [labels] * batch if t == 0 else None)
        sync(device)
        if t in timed:
            times.append(time.perf_counter() - t0)
    return sum(times) / len(times) / batch


def count_flops(network, images, mask, objects, config, frames: int, autocast) -> list[float]:
    core = InferenceCore(network, config)
    core.set_all_labels(list(range(1, objects + 1)))
    out = []
    for t in range(frames):
        with FlopCounterMode(display=False) as counter, autocast():
            core.step(images[t], mask if t == 0 else None, list(range(1, objects + 1)) if t == 0 else None)
        out.append(counter.get_total_flops())
    return out


def time_stages(network, device, h: int, w: int, objects: int, batches=(1, 4)) -> None:
    """Seconds per frame of encode_key and of the decoder, alone and batched."""
    from xmem_traj.xmem.network import owner_index
    hp, wp = h + (-h) % 16, w + (-w) % 16
    print(f"\n| stage (per frame, {hp}×{wp}, {objects} objects/frame) | " +
          " | ".join(f"B={b}" for b in batches) + " |\n|---|" + "---|" * len(batches))
    rows = {"encode_key": [], "decoder (segment)": []}
    with torch.no_grad():
        for b in batches:
            img = torch.randn(b, 3, hp, wp, device=device)
            network.encode_key(img)  # warm-up
            sync(device); t0 = time.perf_counter()
            _, _, _, f16, f8, f4 = network.encode_key(img)
            sync(device); rows["encode_key"].append((time.perf_counter() - t0) / b)
            n = objects * b
            owner = owner_index([objects] * b, device)
            readout = torch.randn(n, network.value_dim, hp // 16, wp // 16, device=device)
            hidden = torch.randn(n, network.hidden_dim, hp // 16, wp // 16, device=device)
            sync(device); t0 = time.perf_counter()
            network.decoder(f16, f8, f4, hidden, readout, owner, h_out=True)
            sync(device); rows["decoder (segment)"].append((time.perf_counter() - t0) / b)
    for name, vals in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in vals) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32",
                   help="bf16 runs the steps under autocast")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default: 2)")
    p.add_argument("--height", type=int, default=480)
    p.add_argument("--width", type=int, default=854)
    p.add_argument("--objects", type=int, default=2)
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--warmup", type=int, default=3, help="frames not timed (default: 3)")
    p.add_argument("--timed", type=int, default=5, help="frames timed after warm-up (default: 5)")
    p.add_argument("--json", help="also write the results to this JSON file")
    p.add_argument("--stages", action="store_true",
                   help="only time encode_key and the decoder per frame at B=1 and B=4")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32

    def autocast():
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16")

    network = load_xmem(None).to(device)
    if args.stages:
        time_stages(network, device, args.height, args.width, args.objects)
        return
    config = {"mem_every": 5, "top_k": 30}  # eval.py defaults otherwise
    total = args.warmup + args.timed
    images, mask = synthetic_video(total, args.height, args.width, args.objects, device)
    timed = range(args.warmup, total)

    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{args.threads} threads'}), "
          f"{args.dtype}, {args.height}×{args.width}, {args.objects} objects, frames {timed.start}-{timed.stop - 1} timed")
    peak = measured_peak(device, dtype)
    print("measured peak GFLOP/s: " + ", ".join(f"{k} {v:.1f}" for k, v in peak.items()))
    flops = count_flops(network, images, mask, args.objects, config, total, autocast)
    gflop = sum(flops[t] for t in timed) / len(timed) / 1e9
    print(f"GFLOP per frame (frames {timed.start}-{timed.stop - 1}, mean): {gflop:.1f}; "
          f"first frame {flops[0] / 1e9:.1f}")

    rows = [("InferenceCore", run_core(network, images, mask, args.objects, config, timed, device, autocast))]
    for batch in args.batch_sizes:
        rows.append((f"batched B={batch}", run_batched(network, images, mask, args.objects, config,
                                                       batch, timed, device, autocast)))
    best_peak = max(peak.values())
    print(f"\n| engine | s per video-frame | GFLOP/s | % of measured peak ({best_peak:.0f}) |")
    print("|---|---|---|---|")
    for name, sec in rows:
        print(f"| {name} | {sec:.3f} | {gflop / sec:.1f} | {100 * gflop / sec / best_peak:.0f}% |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "peak_gflops": peak, "gflop_per_frame": gflop,
                       "rows": {n: s for n, s in rows}}, f, indent=1)


if __name__ == "__main__":
    main()

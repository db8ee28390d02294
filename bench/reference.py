#!/usr/bin/env python3
"""PyTorch reference for `gradlab bench`: the same models, data, threads and batch size.

Prints one JSON object (the same shape as Gradlab's BenchReport) on stdout. PyTorch is not a
dependency of Gradlab; install it with `python -m venv bench/.venv && bench/.venv/bin/pip install torch`.
"""
import argparse
import gzip
import json
import os
import resource
import struct
import time

import numpy as np
import torch
from torch import nn


def load(path):
    """Fashion-MNIST IDX folder or the embedded MNIST 5k CSV; standardised like Gradlab does."""
    if os.path.isdir(path):
        with gzip.open(os.path.join(path, "train-images-idx3-ubyte.gz")) as f:
            _, n, rows, cols = struct.unpack(">IIII", f.read(16))
            x = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 1, rows, cols)
        with gzip.open(os.path.join(path, "train-labels-idx1-ubyte.gz")) as f:
            f.read(8)
            y = np.frombuffer(f.read(), dtype=np.uint8)
    else:
        table = np.loadtxt(gzip.open(path), delimiter=",", dtype=np.float32)
        x = table[:, :784].reshape(-1, 1, 28, 28)
        y = table[:, 784]
    x = x.astype(np.float32) / 255.0
    x = (x - x.mean()) / x.std()
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))


def model(name):
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10))
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def groups(net):
    """Layers grouped as Gradlab runs them: a conv with its activation and pooling is one
    "conv block", a linear layer with its activation one "dense"."""
    out, current = [], None
    for layer in net:
        if isinstance(layer, nn.Conv2d):
            current = ["conv block", [layer]]
            out.append(current)
        elif isinstance(layer, nn.Linear):
            current = ["dense", [layer]]
            out.append(current)
        elif isinstance(layer, (nn.ReLU, nn.MaxPool2d)) and current is not None:
            current[1].append(layer)
        else:
            current = None  # flatten: free in both
            out.append(["flatten", [layer]])
    return [(kind, nn.Sequential(*layers)) for kind, layers in out]


def layer_timings(net, x, reps):
    parts = groups(net)
    inputs = [x]
    with torch.no_grad():
        for _, part in parts:
            inputs.append(part(inputs[-1]))
    out = {}
    for i, (kind, part) in enumerate(parts):
        if kind == "flatten":
            continue
        xi = inputs[i].detach().clone().requires_grad_(i > 0)
        g = torch.randn_like(inputs[i + 1])
        fwd, bwd = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            y = part(xi)
            t1 = time.perf_counter()
            y.backward(g)
            t2 = time.perf_counter()
            fwd.append((t1 - t0) * 1e3)
            bwd.append((t2 - t1) * 1e3)
            part.zero_grad(set_to_none=True)
            xi.grad = None
        f, b = sorted(fwd)[len(fwd) // 2], sorted(bwd)[len(bwd) // 2]
        t = out.setdefault(kind, {"kind": kind, "forward_ms": 0.0, "backward_ms": 0.0})
        t["forward_ms"] += f
        t["backward_ms"] += b
    return list(out.values())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--layer-reps", type=int, default=20)
    p.add_argument("--models", default="mlp,cnn")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    x, y = load(a.data)
    # Gradlab holds out 10% for validation; train on the rest
    n_train = len(y) - round(len(y) * 0.1)
    order = torch.randperm(len(y))[:n_train]
    x, y = x[order], y[order]
    results = []
    for name in a.models.split(","):
        net = model(name)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        perm = torch.randperm(n_train)
        pos = 0

        def step():
            nonlocal pos, perm
            if pos + a.batch_size > n_train:
                perm, pos = torch.randperm(n_train), 0
            idx = perm[pos:pos + a.batch_size]
            pos += a.batch_size
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()
            loss.item()
            return len(idx)

        for _ in range(a.warmup):
            step()
        t0 = time.perf_counter()
        samples = sum(step() for _ in range(a.batches))
        rate = samples / (time.perf_counter() - t0)
        layers = layer_timings(net, x[: a.batch_size], a.layer_reps)
        params = sum(p.numel() for p in net.parameters())
        results.append({"name": name, "params": params, "samples_per_s": rate, "layers": layers})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "engine": f"pytorch {torch.__version__}",
        "data": a.data,
        "threads": a.threads,
        "batch_size": a.batch_size,
        "models": results,
        "peak_rss_mib": peak,
    }))


if __name__ == "__main__":
    main()

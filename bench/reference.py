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

# Where the models train (`--device`); the data sits there too, so a step copies nothing.
DEVICE = torch.device("cpu")


def sync():
    """Waits for the device's queued work, so a timing covers it (CUDA runs asynchronously)."""
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


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
    if name == "cifar":
        # presets/cifar10_cnn.toml
        return nn.Sequential(
            nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(8192, 512), nn.ReLU(), nn.Linear(512, 10),
        )
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
            sync()
            t0 = time.perf_counter()
            y = part(xi)
            sync()
            t1 = time.perf_counter()
            y.backward(g)
            sync()
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


class RecurrentClassifier(nn.Module):
    """Embedding, one recurrent layer (the last state, both ends when bidirectional), dropout,
    a linear head: the text presets' classifiers."""

    def __init__(self, s):
        super().__init__()
        self.embed = nn.Embedding(s["vocab"], s["embed"])
        cell = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[s["kind"]]
        self.rnn = cell(s["embed"], s["hidden"], batch_first=True, bidirectional=s["bidirectional"])
        self.drop = nn.Dropout(s["dropout"])
        width = s["hidden"] * (2 if s["bidirectional"] else 1)
        self.head = nn.Linear(width, s["classes"] if not s["per_step"] else s["vocab"])
        self.per_step = s["per_step"]
        self.hidden = s["hidden"]

    def forward(self, ids):
        out, _ = self.rnn(self.embed(ids))
        if self.per_step:
            return self.head(self.drop(out))
        last = out[:, -1, : self.hidden]
        if out.shape[2] > self.hidden:
            last = torch.cat([last, out[:, 0, self.hidden:]], dim=1)
        return self.head(self.drop(last))


class TinyTransformer(nn.Module):
    """Token and position embeddings, pre-norm encoder blocks with a causal mask, a final layer
    norm and a linear head per step: the tiny transformer preset."""

    def __init__(self, s):
        super().__init__()
        d = s["embed"]
        self.embed = nn.Embedding(s["vocab"], d)
        self.position = nn.Parameter(torch.randn(s["len"], d) * 0.02)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(d, s["heads"], 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
            for _ in range(s["blocks"])
        )
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, s["vocab"])
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(s["len"]))

    def forward(self, ids):
        x = self.embed(ids) + self.position[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, src_mask=self.mask, is_causal=True)
        return self.head(self.norm(x))


def text_rate(s, batches, warmup):
    """Training samples/s of a text model on random ids of its vocabulary and length."""
    torch.manual_seed(42)
    net = (TinyTransformer(s) if s["kind"] == "transformer" else RecurrentClassifier(s)).to(DEVICE)
    opt = (torch.optim.AdamW if s["kind"] == "transformer" else torch.optim.Adam)(net.parameters(), lr=s["lr"])
    n = 4096
    ids = torch.randint(2, s["vocab"], (n, s["len"] + (1 if s["per_step"] else 0))).to(DEVICE)
    labels = torch.randint(0, max(s["classes"], 2), (n,)).to(DEVICE)
    bce = s["classes"] == 1

    def step(i):
        rows = torch.randint(0, n, (s["batch"],)).to(DEVICE)
        opt.zero_grad(set_to_none=True)
        if s["per_step"]:
            x, y = ids[rows, :-1], ids[rows, 1:]
            out = net(x)
            loss = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
        elif bce:
            out = net(ids[rows]).squeeze(1)
            loss = nn.functional.binary_cross_entropy_with_logits(out, labels[rows].float())
        else:
            loss = nn.functional.cross_entropy(net(ids[rows]), labels[rows] % s["classes"])
        loss.backward()
        if s["clip"] > 0:
            nn.utils.clip_grad_norm_(net.parameters(), s["clip"])
        opt.step()
        loss.item()
        return s["batch"]

    for i in range(warmup):
        step(i)
    t0 = time.perf_counter()
    samples = sum(step(i) for i in range(batches))
    rate = samples / (time.perf_counter() - t0)
    params = sum(p.numel() for p in net.parameters())
    return {"name": s["name"], "params": params, "samples_per_s": rate, "layers": []}


def mnist_scaled():
    """The embedded MNIST 5k scaled to [0, 1], as the generative presets read it."""
    here = os.path.dirname(os.path.abspath(__file__))
    table = np.loadtxt(gzip.open(os.path.join(here, "..", "assets", "mnist_5k.csv.gz")), delimiter=",", dtype=np.float32)
    n_train = len(table) - round(len(table) * 0.1)
    return torch.from_numpy(np.ascontiguousarray(table[:n_train, :784] / 255.0))


def generative_rate(name, batches, warmup):
    """presets/vae_mnist.toml, gan_mnist_mlp.toml and gan_mnist_dcgan.toml, at their own batch sizes."""
    x = mnist_scaled().to(DEVICE)
    leaky = lambda: nn.LeakyReLU(0.2)
    if name == "vae":
        batch = 128
        enc = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 4))
        dec = nn.Sequential(nn.Linear(2, 512), nn.ReLU(), nn.Linear(512, 784))
        enc, dec = enc.to(DEVICE), dec.to(DEVICE)
        nets = [enc, dec]
        opt = torch.optim.Adam([p for n in nets for p in n.parameters()], lr=1e-3)

        def train(xb):
            stats = enc(xb)
            mu, logvar = stats[:, :2], stats[:, 2:]
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            logits = dec(z)
            rec = nn.functional.binary_cross_entropy_with_logits(logits, xb, reduction="sum")
            kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            loss = (rec + kl) / len(xb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss.item()
    elif name == "dcgan":
        batch = 64
        x = x.reshape(-1, 1, 28, 28)
        g = nn.Sequential(
            nn.Linear(64, 3136), nn.BatchNorm1d(3136), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid(),
        )
        d = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), leaky(), nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), leaky(),
            nn.Flatten(), nn.Linear(3136, 1),
        )
    else:
        batch = 64
        g = nn.Sequential(
            nn.Linear(64, 256), nn.BatchNorm1d(256), leaky(), nn.Linear(256, 512), nn.BatchNorm1d(512), leaky(),
            nn.Linear(512, 1024), nn.BatchNorm1d(1024), leaky(), nn.Linear(1024, 784), nn.Sigmoid(),
        )
        d = nn.Sequential(
            nn.Linear(784, 512), leaky(), nn.Dropout(0.3), nn.Linear(512, 256), leaky(), nn.Dropout(0.3),
            nn.Linear(256, 1),
        )
    if name != "vae":
        g, d = g.to(DEVICE), d.to(DEVICE)
        nets = [g, d]
        og = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        od = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
        bce = nn.BCEWithLogitsLoss()

        def train(xb):
            n = len(xb)
            ones, zeros = torch.ones(n, 1, device=DEVICE), torch.zeros(n, 1, device=DEVICE)
            fake = g(torch.randn(n, 64, device=DEVICE))
            od.zero_grad(set_to_none=True)
            d_loss = bce(d(xb), ones) + bce(d(fake.detach()), zeros)
            d_loss.backward()
            od.step()
            og.zero_grad(set_to_none=True)
            g_loss = bce(d(fake), ones)
            g_loss.backward()
            og.step()
            d_loss.item(), g_loss.item()

    perm, pos = torch.randperm(len(x), device=DEVICE), 0

    def step():
        nonlocal perm, pos
        if pos + batch > len(x):
            perm, pos = torch.randperm(len(x), device=DEVICE), 0
        xb = x[perm[pos:pos + batch]]
        pos += batch
        train(xb)
        return len(xb)

    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    samples = sum(step() for _ in range(batches))
    rate = samples / (time.perf_counter() - t0)
    params = sum(p.numel() for n in nets for p in n.parameters())
    return {"name": name, "params": params, "samples_per_s": rate, "layers": []}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--batches", type=int, default=60)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--layer-reps", type=int, default=20)
    p.add_argument("--models", default="mlp,cnn")
    p.add_argument("--text", default="[]", help="JSON list of text models' shapes (from gradlab bench)")
    p.add_argument("--device", default="cpu",
                   help="cpu, or cuda / cuda:N for PyTorch's CUDA build (gradlab bench --device cuda:N)")
    a = p.parse_args()
    global DEVICE
    kind, _, ordinal = a.device.partition(":")
    if kind not in ("cpu", "cuda") or (kind == "cpu" and ordinal) or (ordinal and not ordinal.isdigit()):
        p.error(f"--device {a.device}: expected cpu, cuda or cuda:N")
    if kind == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {a.device}: this PyTorch has no CUDA device (a CPU-only build, or no driver)")
    if kind == "cuda" and ordinal and int(ordinal) >= torch.cuda.device_count():
        p.error(f"--device {a.device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    DEVICE = torch.device(a.device)
    torch.set_num_threads(a.threads)
    torch.manual_seed(42)
    x, y = load(a.data)
    # Gradlab holds out 10% for validation; train on the rest
    n_train = len(y) - round(len(y) * 0.1)
    order = torch.randperm(len(y))[:n_train]
    x, y = x[order].to(DEVICE), y[order].to(DEVICE)
    images = (x, y, n_train)
    results = []
    for name in [m for m in a.models.split(",") if m]:
        if name in ("vae", "gan", "dcgan"):
            results.append(generative_rate(name, a.batches, a.warmup))
            continue
        if name == "cifar":
            # CIFAR-10's shapes (Gradlab trains on a fixture in CIFAR's format: the speed does not
            # depend on what the pixels show); 90% of 6 x 2,000 records, as Gradlab splits them
            n_train = 10800
            x, y = torch.randn(n_train, 3, 32, 32, device=DEVICE), torch.randint(0, 10, (n_train,), device=DEVICE)
        else:
            x, y, n_train = images
        net = model(name).to(DEVICE)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = nn.CrossEntropyLoss()
        perm = torch.randperm(n_train, device=DEVICE)
        pos = 0

        def step():
            nonlocal pos, perm
            if pos + a.batch_size > n_train:
                perm, pos = torch.randperm(n_train, device=DEVICE), 0
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
    for spec in json.loads(a.text):
        results.append(text_rate(spec, a.batches, a.warmup))
    # host memory; a GPU run's device memory is not in it
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({
        "engine": f"pytorch {torch.__version__}",
        "device": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else "cpu",
        "data": a.data,
        "threads": a.threads,
        "batch_size": a.batch_size,
        "models": results,
        "peak_rss_mib": peak,
    }))


if __name__ == "__main__":
    main()

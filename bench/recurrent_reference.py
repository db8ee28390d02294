#!/usr/bin/env python3
"""PyTorch reference for Gradlab's recurrent layers (`model::recurrent::sequence`).

Times one forward + backward of a single-direction nn.RNN (tanh) / nn.LSTM / nn.GRU layer with
batch_first, the text presets' shapes (batch 64, input 32, hidden 32, time 50 and 100), the
gradient flowing to the input and all four weights, exactly as the Rust timing example
(`cargo run --release --no-default-features --example recurrent_timing`) does.

Prints one JSON object per line: cell, time, batch, ms (median forward + backward of 50 runs
after 5 warm-up runs), fastest_ms and samples_per_s (batch / median). Install PyTorch with
`python -m venv bench/.venv && bench/.venv/bin/pip install torch`.
"""
import argparse
import json
import statistics
import time

import torch
from torch import nn


def measure(cell, batch, steps, inputs, hidden, reps):
    layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell](inputs, hidden, batch_first=True)
    x = torch.randn(batch, steps, inputs, requires_grad=True)
    upstream = torch.randn(batch, steps, hidden)
    times = []
    for i in range(reps + 5):
        start = time.perf_counter()
        out, _ = layer(x)
        (out * upstream).sum().backward()
        elapsed = time.perf_counter() - start
        if i >= 5:  # warm-up: allocator and first-call costs
            times.append(elapsed)
        layer.zero_grad(set_to_none=True)
        x.grad = None
    median = statistics.median(times)
    return {"cell": cell, "time": steps, "batch": batch, "ms": round(median * 1e3, 3),
            "fastest_ms": round(min(times) * 1e3, 3), "samples_per_s": round(batch / median, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for cell in ["rnn", "lstm", "gru"]:
        for steps in [50, 100]:
            row = measure(cell, args.batch, steps, args.input, args.hidden, args.reps)
            row["threads"] = args.threads
            row["torch"] = torch.__version__
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch's forward + backward time for the layers `examples/decoder_timing.rs` times: batch 64,
ConvTranspose2d 32->16 (7x7 -> 14x14) and 16->1 (14x14 -> 28x28), kernel 4, stride 2, padding 1;
BatchNorm2d(16) in training mode and Upsample(2, nearest) at 14x14x16. Loss: the sum of the
outputs. The median and the fastest of 30 timed runs after 5 warm-up runs, one JSON line each.

    bench/.venv/bin/python bench/decoder_reference.py --threads 2
"""
import argparse
import json
import time

import torch
from torch import nn


def timed(module, shape):
    x = torch.randn(*shape, requires_grad=True)
    times = []
    for i in range(35):
        start = time.perf_counter()
        module(x).sum().backward()
        if i >= 5:
            times.append((time.perf_counter() - start) * 1e3)
        x.grad = None
        module.zero_grad(set_to_none=True)
    times.sort()
    return times[len(times) // 2], times[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    threads = parser.parse_args().threads
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    n = 64
    cases = [
        ("conv_transpose2d 32->16 7x7->14x14", nn.ConvTranspose2d(32, 16, 4, 2, 1), (n, 32, 7, 7)),
        ("conv_transpose2d 16->1 14x14->28x28", nn.ConvTranspose2d(16, 1, 4, 2, 1), (n, 16, 14, 14)),
        ("batchnorm2d 16 at 14x14 (training)", nn.BatchNorm2d(16).train(), (n, 16, 14, 14)),
        ("upsample x2 16 at 14x14", nn.Upsample(scale_factor=2, mode="nearest"), (n, 16, 14, 14)),
    ]
    for name, module, shape in cases:
        median, fastest = timed(module, shape)
        print(json.dumps({"layer": name, "threads": threads, "torch": torch.__version__,
                          "median_ms": median, "fastest_ms": fastest}))


if __name__ == "__main__":
    main()

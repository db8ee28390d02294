#!/usr/bin/env python3
"""Prints the PyTorch values hard-coded in `src/model/recurrent/tests.rs` (pytorch_values).

A bidirectional single-layer nn.RNN / nn.LSTM / nn.GRU (batch_first), batch 2, time 3, input 2,
hidden 3, with inputs and weights from a formula both sides compute (value k of a tensor is
scale * sin(0.7 k + offset)), so the test needs no files. For each cell: the output of the
forward and the reverse direction, and for the forward direction the gradients of
sum(out * upstream) (upstream value k = cos(0.3 k)) with respect to x and w_hh.
"""
import math

import torch
from torch import nn

B, T, I, H = 2, 3, 2, 3


def formula(shape, offset, scale=0.5):
    n = math.prod(shape)
    return torch.tensor([scale * math.sin(0.7 * k + offset) for k in range(n)], dtype=torch.float32).reshape(shape)


def rust(name, t):
    # the shortest text that reads back as the same f32
    values = ", ".join(str(v) for v in t.detach().flatten().numpy())
    print(f"        {name}: &[{values}],")


for cell, gates in [("Rnn", 1), ("Lstm", 4), ("Gru", 3)]:
    layer = {"Rnn": nn.RNN, "Lstm": nn.LSTM, "Gru": nn.GRU}[cell](I, H, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for suffix, base in [("", 1.0), ("_reverse", 5.0)]:
            getattr(layer, "weight_ih_l0" + suffix).copy_(formula((gates * H, I), base))
            getattr(layer, "weight_hh_l0" + suffix).copy_(formula((gates * H, H), base + 1))
            getattr(layer, "bias_ih_l0" + suffix).copy_(formula((gates * H,), base + 2))
            getattr(layer, "bias_hh_l0" + suffix).copy_(formula((gates * H,), base + 3))
    x = formula((B, T, I), 0.0, 1.0).requires_grad_(True)
    out, _ = layer(x)
    forward, reverse = out[..., :H], out[..., H:]
    upstream = torch.tensor([math.cos(0.3 * k) for k in range(B * T * H)], dtype=torch.float32).reshape(B, T, H)
    (forward * upstream).sum().backward()
    print(f"    PyTorchCase {{\n        cell: Cell::{cell},")
    rust("forward", forward)
    rust("reverse", reverse)
    rust("dx", x.grad)
    rust("dw_hh", layer.weight_hh_l0.grad)
    print("    },")

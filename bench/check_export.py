#!/usr/bin/env python3
"""Loads Gradlab exports in PyTorch and ONNX Runtime and compares their logits with Gradlab's.

    GRADLAB_EXPORT_DUMP=/tmp/exports cargo test --test export
    bench/.venv/bin/python bench/check_export.py /tmp/exports

Each folder under the argument holds an export (config.json, model.safetensors, model.onnx) and
the samples the test fed Gradlab (inputs.f32, logits.f32, samples.json). The PyTorch model is
built from config.json's `layers` alone, as a user would: nn.Sequential of the modules it names,
weights loaded from model.safetensors by the tensor names it gives.
"""
import json
import sys
from pathlib import Path

import numpy as np


def torch_model(card, weights):
    import torch
    from torch import nn

    modules = []
    for layer in card["layers"]:
        kind = layer["type"]
        if kind == "Conv2d":
            m = nn.Conv2d(layer["in_channels"], layer["out_channels"], layer["kernel_size"],
                          stride=layer["stride"], padding=layer["padding"])
        elif kind == "Linear":
            m = nn.Linear(layer["in_features"], layer["out_features"])
        elif kind == "MaxPool2d":
            m = nn.MaxPool2d(layer["kernel_size"], stride=layer["stride"])
        elif kind == "Flatten":
            m = nn.Flatten(layer["start_dim"])
        elif kind == "ReLU":
            m = nn.ReLU()
        elif kind == "Tanh":
            m = nn.Tanh()
        elif kind == "Sigmoid":
            m = nn.Sigmoid()
        elif kind == "GELU":
            m = nn.GELU(approximate=layer["approximate"])
        elif kind == "LeakyReLU":
            m = nn.LeakyReLU(layer["negative_slope"])
        elif kind == "Dropout":
            m = nn.Dropout(layer["p"])
        elif kind == "Dropout2d":
            m = nn.Dropout2d(layer["p"])
        elif kind == "BatchNorm":
            module = getattr(nn, layer["module"])  # BatchNorm1d or BatchNorm2d
            m = module(layer["num_features"], eps=layer["eps"], momentum=layer["momentum"])
        elif kind == "ConvTranspose2d":
            m = nn.ConvTranspose2d(layer["in_channels"], layer["out_channels"], layer["kernel_size"],
                                   stride=layer["stride"], padding=layer["padding"],
                                   output_padding=layer["output_padding"])
        elif kind == "Upsample":
            m = nn.Upsample(scale_factor=layer["scale_factor"], mode=layer["mode"])
        elif kind == "Unflatten":
            m = nn.Unflatten(layer["dim"], layer["unflattened_size"])
        else:
            raise SystemExit(f"unknown layer type {kind}")
        if "weight" in layer:
            with torch.no_grad():
                m.weight.copy_(torch.from_numpy(weights[layer["weight"]]))
                m.bias.copy_(torch.from_numpy(weights[layer["bias"]]))
        if kind == "BatchNorm":
            # the buffers as load_state_dict would take them (num_batches_tracked is int64)
            state = {k: torch.from_numpy(weights[layer[k]]) for k in
                     ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
            m.load_state_dict(state)
        modules.append(m)
    return nn.Sequential(*modules).eval()


def main():
    from safetensors.numpy import load_file

    root = Path(sys.argv[1])
    for d in sorted(p for p in root.iterdir() if (p / "config.json").exists()):
        card = json.loads((d / "config.json").read_text())
        shapes = json.loads((d / "samples.json").read_text())
        x = np.fromfile(d / "inputs.f32", dtype="<f4").reshape(shapes["inputs"])
        ours = np.fromfile(d / "logits.f32", dtype="<f4").reshape(shapes["logits"])
        line = f"{d.name}: {len(x)} samples"
        try:
            import torch

            model = torch_model(card, load_file(str(d / "model.safetensors")))
            with torch.no_grad():
                theirs = model(torch.from_numpy(x)).numpy()
            line += f"; PyTorch {torch.__version__} vs Gradlab max |diff| {np.abs(theirs - ours).max():.2e}"
        except ImportError:
            line += "; PyTorch not installed"
        try:
            import onnxruntime as ort

            sess = ort.InferenceSession(str(d / "model.onnx"), providers=["CPUExecutionProvider"])
            name = sess.get_inputs()[0].name
            theirs = sess.run(None, {name: x})[0]
            line += f"; ONNX Runtime {ort.__version__} vs Gradlab max |diff| {np.abs(theirs - ours).max():.2e}"
        except ImportError:
            line += "; onnxruntime not installed"
        print(line)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes the golden file for tests/test_golden.cpp with PyTorch (Debian's python3-torch).

The notebook's layer stack (Conv2D 32 - MaxPool - Conv2D 64 - MaxPool - Flatten - Dense 128 -
Dropout - Dense 64 - Dropout - Dense 2 sigmoid) at a 10x10x3 input, batch 4, in float64, with
weights and inputs from an integer hash that the C++ test evaluates the same way. Dropout
is in inference mode (the identity). The loss is Keras' sparse categorical cross-entropy on
probabilities: clip to [1e-7, 1 - 1e-7], log, softmax cross-entropy, batch mean.

The file holds the model output, the loss and the gradient of the loss with respect to every
parameter, in Keras' layouts (HWIO kernels, inputs x units Dense kernels), as float32.

Usage: python3 tests/golden/generate_golden.py tests/data/golden_notebook_stack.bin
"""
import math
import struct
import sys

import numpy as np
import torch

BATCH, SIZE, CHANNELS = 4, 10, 3
LABELS = [1, 0, 0, 1]


def formula(count, salt, scale):
    """value[i] = scale * (2u - 1) with u = splitmix64(salt * 2^32 + i) / 2^64, in [-scale, scale):
    integer arithmetic, so test_golden.cpp computes exactly the same numbers."""
    mask = (1 << 64) - 1
    values = np.empty(count)
    for i in range(count):
        z = (salt * (1 << 32) + i + 0x9E3779B97F4A7C15) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        z ^= z >> 31
        values[i] = scale * (2.0 * ((z >> 11) * 2.0 ** -53) - 1.0)
    return values


def conv_params(kh, kw, cin, cout, salt):
    kernel = formula(kh * kw * cin * cout, salt, math.sqrt(3.0 / (kh * kw * cin)))
    bias = formula(cout, salt + 100, 0.1)
    return (torch.tensor(kernel.reshape(kh, kw, cin, cout), requires_grad=True),
            torch.tensor(bias, requires_grad=True))


def dense_params(inputs, units, salt):
    kernel = formula(inputs * units, salt, math.sqrt(3.0 / inputs))
    bias = formula(units, salt + 100, 0.1)
    return (torch.tensor(kernel.reshape(inputs, units), requires_grad=True),
            torch.tensor(bias, requires_grad=True))


def main(path):
    torch.set_default_dtype(torch.float64)
    x = torch.tensor(0.5 + formula(BATCH * SIZE * SIZE * CHANNELS, 0, 0.5)
                     ).reshape(BATCH, SIZE, SIZE, CHANNELS)
    params = [*conv_params(3, 3, 3, 32, 1), *conv_params(3, 3, 32, 64, 2),
              *dense_params(64, 128, 3), *dense_params(128, 64, 4), *dense_params(64, 2, 5)]
    k1, b1, k2, b2, w3, b3, w4, b4, w5, b5 = params

    def conv(h, k, b):  # NHWC in and out, HWIO kernel
        out = torch.nn.functional.conv2d(h.permute(0, 3, 1, 2), k.permute(3, 2, 0, 1), b)
        return out.permute(0, 2, 3, 1)

    def pool(h):
        return torch.nn.functional.max_pool2d(h.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)

    h = pool(torch.relu(conv(x, k1, b1)))
    h = pool(torch.relu(conv(h, k2, b2)))
    h = h.reshape(BATCH, -1)  # NHWC order, as Keras' Flatten
    h = torch.relu(h @ w3 + b3)
    h = torch.relu(h @ w4 + b4)
    probabilities = torch.sigmoid(h @ w5 + b5)
    clipped = torch.clamp(probabilities, 1e-7, 1 - 1e-7)
    loss = torch.nn.functional.cross_entropy(torch.log(clipped), torch.tensor(LABELS))
    loss.backward()

    records = [("output", probabilities.detach().numpy()), ("loss", loss.detach().numpy())]
    names = ["conv2d/kernel", "conv2d/bias", "conv2d_1/kernel", "conv2d_1/bias", "dense/kernel",
             "dense/bias", "dense_1/kernel", "dense_1/bias", "dense_2/kernel", "dense_2/bias"]
    records += [(n + "/grad", p.grad.numpy()) for n, p in zip(names, params)]
    with open(path, "wb") as f:
        f.write(b"STGOLD01")
        f.write(struct.pack("<I", len(records)))
        for name, values in records:
            data = np.asarray(values, dtype="<f4").ravel()
            f.write(struct.pack("<I", len(name)) + name.encode())
            f.write(struct.pack("<Q", data.size) + data.tobytes())
    print(f"wrote {path}: loss {loss.item():.9f}, torch {torch.__version__}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden_notebook_stack.bin")

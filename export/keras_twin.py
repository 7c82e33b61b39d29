"""Channels-last Keras twins of the PyTorch encoders and phone model, with the weights copied.

An encoder's LayerNorm is written out as MEAN/SUB/MUL/MEAN/ADD/RSQRT/MUL ("decomposed", XNNPACK runs
it in int8) or as one L2_NORMALIZATION of (x - mu) with an eps channel ("l2norm", exact); its affine
and PReLU become relu(n*g*c + b*c) + (n*g*a + b*a), c = 1 - a; BatchNorm folds into the conv.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def fold_batchnorm(conv_w: np.ndarray, bn: Any) -> tuple[np.ndarray, np.ndarray]:
    """Fold an eval-mode BatchNorm1d into a bias-free Conv1d: weights (O, I, K) -> (w', b')."""
    var = bn.running_var.detach().numpy().astype(np.float64)
    scale = bn.weight.detach().numpy() / np.sqrt(var + bn.eps)             # (O,)
    bias = bn.bias.detach().numpy() - bn.running_mean.detach().numpy() * scale
    return (conv_w * scale[:, None, None]).astype(np.float32), bias.astype(np.float32)


def conv_params(block: Any) -> tuple[np.ndarray, np.ndarray]:
    """A ConvBlock's conv weights (O, I, K) and bias (O,), BatchNorm folded when it has one."""
    from torch import nn

    w = block.conv.weight.detach().numpy().astype(np.float32)
    if isinstance(block.norm, nn.BatchNorm1d):
        return fold_batchnorm(w, block.norm)
    return w, np.zeros(w.shape[0], np.float32)


def folded_torch_encoder(encoder: Any) -> Any:
    """A deep copy of ``encoder`` (eval) with BatchNorm folded into conv biases (ONNX export)."""
    import copy

    import torch
    from torch import nn

    enc = copy.deepcopy(encoder).eval()
    for block in enc.blocks:
        if isinstance(block.norm, nn.BatchNorm1d):
            w, b = conv_params(block)
            conv = nn.Conv1d(block.conv.in_channels, block.conv.out_channels, block.kernel,
                             stride=block.stride, bias=True)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(w))
                conv.bias.copy_(torch.from_numpy(b))
            block.conv, block.norm = conv, nn.Identity()
    return enc


def _normalized(x: Any, eps: float) -> Any:
    """(x - mean) * rsqrt(var + eps) over the last axis: MEAN, SUB, MUL, MEAN, ADD, RSQRT, MUL."""
    from keras import ops

    mu = ops.mean(x, axis=-1, keepdims=True)                    # (1, T, 1)
    d = ops.subtract(x, mu)                                     # (1, T, C)
    var = ops.mean(ops.multiply(d, d), axis=-1, keepdims=True)  # (1, T, 1)
    return ops.multiply(d, ops.rsqrt(ops.add(var, np.float32(eps))))


def _l2_normalize_layer(name: str) -> Any:
    """A Keras layer applying tf.nn.l2_normalize over the last axis (TFLite L2_NORMALIZATION)."""
    import keras

    from crossl_edge.export.tflite_export import import_tf

    tf = import_tf()

    class L2Normalize(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            return tf.nn.l2_normalize(x, axis=-1)

    return L2Normalize(name=name)


def _unit_normalized(x: Any, eps: float, *, name: str) -> Any:
    """(x - mean) / sqrt(sum((x - mean)^2) + C*eps) over the last axis: LayerNorm's n / sqrt(C).

    The eps term rides as an extra constant channel sqrt(C*eps), so one L2_NORMALIZATION (squares
    summed in int32, no int8 variance or RSQRT tensor) is exact; the channel is sliced off after.
    """
    from keras import ops

    c = int(x.shape[-1])
    mu = ops.mean(x, axis=-1, keepdims=True)                    # (1, T, 1)
    d = ops.subtract(x, mu)                                     # (1, T, C)
    pad = ops.add(ops.multiply(mu, np.float32(0.0)), np.float32(np.sqrt(c * eps)))  # (1, T, 1)
    u = _l2_normalize_layer(name)(ops.concatenate([d, pad], axis=-1))  # (1, T, C + 1)
    return u[..., :c]                                           # (1, T, C)


def _affine(n: Any, gamma: np.ndarray, beta: np.ndarray) -> Any:
    from keras import ops

    return ops.add(ops.multiply(n, gamma.astype(np.float32)), beta.astype(np.float32))


def _written_layernorm(x: Any, gamma: np.ndarray, beta: np.ndarray, eps: float) -> Any:
    """LayerNorm over the last axis as plain ops (MEAN, SUB, MUL, MEAN, ADD, RSQRT, MUL x2, ADD)."""
    return _affine(_normalized(x, eps), gamma, beta)


def prelu_rewritable(slope: np.ndarray) -> bool:
    """Whether PReLU(slope) after LayerNorm can become two affine branches (every slope < 1)."""
    return bool((np.asarray(slope) < 1.0).all())


LAYERNORMS = ("decomposed", "l2norm")


def _layernorm_prelu(x: Any, gamma: np.ndarray, beta: np.ndarray, eps: float,
                     slope: np.ndarray, *, name: str, layernorm: str = "decomposed") -> Any:
    """PReLU(LayerNorm(x)). With every slope a < 1: relu(c*y) + a*y for y = n*g + b, c = 1 - a,
    each branch one MUL and one ADD (relu fused into the ADD); else LayerNorm then a PRELU op.
    ``layernorm`` "l2norm" computes n via L2_NORMALIZATION (sqrt(C) folded into gamma)."""
    import keras
    from keras import ops

    if layernorm == "l2norm":
        n = _unit_normalized(x, eps, name=f"{name}_l2")
        gamma = gamma * np.sqrt(int(x.shape[-1]))
    else:
        n = _normalized(x, eps)
    if not prelu_rewritable(slope):
        prelu = keras.layers.PReLU(shared_axes=[1], name=name)
        y = prelu(_affine(n, gamma, beta))
        prelu.set_weights([slope.reshape(1, -1)])
        return y
    a = slope.astype(np.float64)
    c = 1.0 - a
    pos = ops.relu(_affine(n, gamma * c, beta * c))
    return ops.add(pos, _affine(n, gamma * a, beta * a))


def keras_encoder(encoder: Any, *, window: int, name: str = "encoder",
                  layernorm: str = "decomposed") -> Any:
    """Keras twin of ``encoder``: input (1, T, C) float32 -> latent (1, D), batch fixed at 1;
    ``layernorm`` picks how a LayerNorm is written (LAYERNORMS)."""
    from crossl_edge.export.tflite_export import import_tf

    if layernorm not in LAYERNORMS:
        raise ValueError(f"layernorm must be one of {LAYERNORMS}, got {layernorm!r}")
    import_tf()   # TensorFlow quiet and oneDNN off before keras imports it
    import keras
    from torch import nn

    cin = encoder.cfg.in_channels
    inp = keras.Input(shape=(window, cin), batch_size=1, name="window")
    x = inp
    for i, block in enumerate(encoder.blocks):
        w, b = conv_params(block)                                       # (O, I, K), (O,)
        batchnorm = isinstance(block.norm, nn.BatchNorm1d)
        conv = keras.layers.Conv1D(w.shape[0], block.kernel, strides=block.stride, padding="same",
                                   use_bias=batchnorm, activation="relu" if batchnorm else None,
                                   name=f"conv{i}")
        x = conv(x)                                                     # (1, T_i, O)
        conv.set_weights([w.transpose(2, 1, 0), b] if batchnorm else [w.transpose(2, 1, 0)])
        if not batchnorm:
            ln = block.norm.norm
            x = _layernorm_prelu(x, ln.weight.detach().numpy().astype(np.float64),
                                 ln.bias.detach().numpy().astype(np.float64), float(ln.eps),
                                 block.act.weight.detach().numpy(), name=f"prelu{i}",
                                 layernorm=layernorm)
    out = keras.layers.GlobalAveragePooling1D(name="latent")(x)         # (1, D)
    return keras.Model(inp, out, name=name)


def keras_phone(phone: Any, *, n_modalities: int, latent_dim: int) -> Any:
    """Keras twin of PhoneModel: (latents (1, M, D), present (1, M)) -> logits (1, K)."""
    from crossl_edge.export.tflite_export import import_tf

    import_tf()   # TensorFlow quiet and oneDNN off before keras imports it
    import keras
    from keras import ops

    lat = keras.Input(shape=(n_modalities, latent_dim), batch_size=1, name="latents")
    pres = keras.Input(shape=(n_modalities,), batch_size=1, name="present")
    x = ops.multiply(lat, ops.expand_dims(pres, -1))                   # (1, M, D)
    x = ops.reshape(x, (1, n_modalities * latent_dim))                 # (1, M * D)
    linears = [m for m in phone.aggregator.mlp if hasattr(m, "weight")]
    for i, lin in enumerate(linears):
        dense = keras.layers.Dense(lin.out_features, activation="relu" if i < 2 else None,
                                   name=f"agg{i}")
        x = dense(x)
        dense.set_weights([lin.weight.detach().numpy().T, lin.bias.detach().numpy()])
    ln = phone.aggregator.norm
    x = _written_layernorm(x, ln.weight.detach().numpy(), ln.bias.detach().numpy(), float(ln.eps))
    heads = [m for m in phone.head.net if hasattr(m, "weight")]
    for i, lin in enumerate(heads):
        dense = keras.layers.Dense(lin.out_features, activation="relu" if i == 0 else None,
                                   name=f"head{i}")
        x = dense(x)
        dense.set_weights([lin.weight.detach().numpy().T, lin.bias.detach().numpy()])
    return keras.Model([lat, pres], x, name="phone")

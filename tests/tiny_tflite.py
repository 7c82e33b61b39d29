"""A fixed int8 TFLite model built by hand with the `tflite` flatbuffer package (no TensorFlow):
byte-for-byte stable, so the C generated from it can be golden-tested (tests/test_firmware.py).
"""

from __future__ import annotations

import flatbuffers
import numpy as np


def tiny_tflite(*, window: int = 4, channels: int = 2, latent: int = 6) -> bytes:
    """A fixed int8 model built by hand: (1,T,C) -> RESHAPE (1,T*C) -> FULLY_CONNECTED -> (1,D)."""
    import tflite as t

    rng = np.random.default_rng(0)
    n_in = window * channels
    w = rng.integers(-127, 128, size=(latent, n_in), dtype=np.int8)
    bias = rng.integers(-500, 500, size=latent).astype(np.int32)
    b = flatbuffers.Builder(1024)

    def vec(values: list, dtype: type) -> int:
        return b.CreateNumpyVector(np.asarray(values, dtype))

    def offsets(start: object, items: list[int]) -> int:
        start(b, len(items))
        for it in reversed(items):
            b.PrependUOffsetTRelative(it)
        return b.EndVector()

    bufs = []
    for data in (None, np.array([1, n_in], np.int32).tobytes(), w.tobytes(), bias.tobytes()):
        dv = None if data is None else b.CreateByteVector(data)
        t.BufferStart(b)
        if dv is not None:
            t.BufferAddData(b, dv)
        bufs.append(t.BufferEnd(b))
    tensors = []
    for name, shape, typ, buf, q in (
            ("input", [1, window, channels], t.TensorType.INT8, 0, (0.05, 3)),
            ("shape", [2], t.TensorType.INT32, 1, None),
            ("flat", [1, n_in], t.TensorType.INT8, 0, (0.05, 3)),
            ("weights", [latent, n_in], t.TensorType.INT8, 2, (0.02, 0)),
            ("bias", [latent], t.TensorType.INT32, 3, (0.05 * 0.02, 0)),
            ("latent", [1, latent], t.TensorType.INT8, 0, (0.1, -5))):
        nv, sv = b.CreateString(name), vec(shape, np.int32)
        qv = None
        if q:
            scale, zp = vec([q[0]], np.float32), vec([q[1]], np.int64)
            t.QuantizationParametersStart(b)
            t.QuantizationParametersAddScale(b, scale)
            t.QuantizationParametersAddZeroPoint(b, zp)
            qv = t.QuantizationParametersEnd(b)
        t.TensorStart(b)
        t.TensorAddShape(b, sv)
        t.TensorAddType(b, typ)
        t.TensorAddBuffer(b, buf)
        t.TensorAddName(b, nv)
        if qv is not None:
            t.TensorAddQuantization(b, qv)
        tensors.append(t.TensorEnd(b))
    new_shape = vec([1, n_in], np.int32)
    t.ReshapeOptionsStart(b)
    t.ReshapeOptionsAddNewShape(b, new_shape)
    opts = [t.ReshapeOptionsEnd(b)]
    t.FullyConnectedOptionsStart(b)
    opts.append(t.FullyConnectedOptionsEnd(b))
    ops = []
    for code, ins, outs, otype, opt in (
            (0, [0, 1], [2], t.BuiltinOptions.ReshapeOptions, opts[0]),
            (1, [2, 3, 4], [5], t.BuiltinOptions.FullyConnectedOptions, opts[1])):
        iv, ov = vec(ins, np.int32), vec(outs, np.int32)
        t.OperatorStart(b)
        t.OperatorAddOpcodeIndex(b, code)
        t.OperatorAddInputs(b, iv)
        t.OperatorAddOutputs(b, ov)
        t.OperatorAddBuiltinOptionsType(b, otype)
        t.OperatorAddBuiltinOptions(b, opt)
        ops.append(t.OperatorEnd(b))
    codes = []
    for op in (t.BuiltinOperator.RESHAPE, t.BuiltinOperator.FULLY_CONNECTED):
        t.OperatorCodeStart(b)
        t.OperatorCodeAddDeprecatedBuiltinCode(b, op)
        t.OperatorCodeAddBuiltinCode(b, op)
        t.OperatorCodeAddVersion(b, 1)
        codes.append(t.OperatorCodeEnd(b))
    tv, opv = offsets(t.SubGraphStartTensorsVector, tensors), offsets(
        t.SubGraphStartOperatorsVector, ops)
    gi, go, gname = vec([0], np.int32), vec([5], np.int32), b.CreateString("main")
    t.SubGraphStart(b)
    t.SubGraphAddTensors(b, tv)
    t.SubGraphAddInputs(b, gi)
    t.SubGraphAddOutputs(b, go)
    t.SubGraphAddOperators(b, opv)
    t.SubGraphAddName(b, gname)
    sg = t.SubGraphEnd(b)
    cv, sv = offsets(t.ModelStartOperatorCodesVector, codes), offsets(
        t.ModelStartSubgraphsVector, [sg])
    bv, desc = offsets(t.ModelStartBuffersVector, bufs), b.CreateString("crossl-edge test model")
    t.ModelStart(b)
    t.ModelAddVersion(b, 3)
    t.ModelAddOperatorCodes(b, cv)
    t.ModelAddSubgraphs(b, sv)
    t.ModelAddDescription(b, desc)
    t.ModelAddBuffers(b, bv)
    b.Finish(t.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())

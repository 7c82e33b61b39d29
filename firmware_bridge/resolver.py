"""The ops an int8 .tflite uses, read from its flatbuffer, and the TFLite Micro op resolver header
that registers exactly those (`MicroMutableOpResolver<N>`); an op without a mapping fails loudly.
"""

from __future__ import annotations

from typing import Final

from crossl_edge.errors import CheckFailed
from crossl_edge.firmware_bridge.tflm_sources import INT8_REGISTRATIONS

# Builtin op (schema name) -> MicroMutableOpResolver method, as in TFLite Micro's
# tensorflow/lite/micro/micro_mutable_op_resolver.h (builtin ops only; custom ops are refused).
OP_METHODS: Final[dict[str, str]] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax",
    "ARG_MIN": "AddArgMin", "ASSIGN_VARIABLE": "AddAssignVariable",
    "AVERAGE_POOL_2D": "AddAveragePool2D", "BATCH_MATMUL": "AddBatchMatMul",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast",
    "CEIL": "AddCeil", "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D",
    "COS": "AddCos", "CUMSUM": "AddCumSum", "DEPTH_TO_SPACE": "AddDepthToSpace",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D", "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv",
    "ELU": "AddElu", "EMBEDDING_LOOKUP": "AddEmbeddingLookup", "EQUAL": "AddEqual",
    "EXP": "AddExp", "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor",
    "FLOOR_DIV": "AddFloorDiv", "FLOOR_MOD": "AddFloorMod",
    "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather", "GATHER_ND": "AddGatherNd",
    "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual", "HARD_SWISH": "AddHardSwish",
    "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization", "L2_POOL_2D": "AddL2Pool2D",
    "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MEAN": "AddMean",
    "MINIMUM": "AddMinimum", "MIRROR_PAD": "AddMirrorPad", "MUL": "AddMul", "NEG": "AddNeg",
    "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack", "PAD": "AddPad", "PADV2": "AddPadV2",
    "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize", "READ_VARIABLE": "AddReadVariable",
    "REDUCE_MAX": "AddReduceMax", "REDUCE_MIN": "AddReduceMin", "RELU": "AddRelu",
    "RELU6": "AddRelu6", "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "REVERSE_V2": "AddReverseV2",
    "ROUND": "AddRound", "RSQRT": "AddRsqrt", "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape",
    "SIN": "AddSin", "SLICE": "AddSlice", "SOFTMAX": "AddSoftmax",
    "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQRT": "AddSqrt", "SQUARE": "AddSquare",
    "SQUARED_DIFFERENCE": "AddSquaredDifference", "SQUEEZE": "AddSqueeze",
    "STRIDED_SLICE": "AddStridedSlice", "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf",
    "TANH": "AddTanh", "TRANSPOSE": "AddTranspose", "TRANSPOSE_CONV": "AddTransposeConv",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "UNPACK": "AddUnpack", "VAR_HANDLE": "AddVarHandle", "WHILE": "AddWhile",
    "ZEROS_LIKE": "AddZerosLike",
}


def model_ops(tflite_bytes: bytes) -> list[str]:
    """Sorted distinct op names a .tflite uses; a corrupt flatbuffer is a failed check."""
    from crossl_edge.tflite_graph import builtin_ops

    try:
        return builtin_ops(tflite_bytes)
    except Exception as e:  # noqa: BLE001 - any flatbuffer failure means a corrupt model
        raise CheckFailed(f"the .tflite file is not a valid TFLite flatbuffer ({e}); "
                          "re-export the bundle.") from e


def resolver_methods(ops: list[str], *, what: str = "the model") -> list[str]:
    """The `MicroMutableOpResolver` method for each op; CheckFailed naming any op with none."""
    missing = [op for op in ops if op not in OP_METHODS]
    if missing:
        raise CheckFailed(f"{what} uses {', '.join(missing)}, which crossl-edge cannot register "
                          "with TFLite Micro's MicroMutableOpResolver; change the model or "
                          "register a kernel by hand.")
    return [OP_METHODS[op] for op in ops]


def int8_only_ops(tflite_bytes: bytes) -> list[str]:
    """Ops whose every use has int8 input 0 and output 0 (candidates for `Register_<OP>_INT8()`)."""
    import tflite

    from crossl_edge.tflite_graph import iter_ops, read_model

    int8 = tflite.TensorType.INT8
    seen: dict[str, bool] = {}
    for v in iter_ops(read_model(tflite_bytes)):
        op, g = v.op, v.graph
        ok = op.InputsLength() > 0 and op.OutputsLength() > 0 \
            and g.Tensors(op.Inputs(0)).Type() == int8 \
            and g.Tensors(op.Outputs(0)).Type() == int8
        seen[v.name] = seen.get(v.name, True) and ok
    return sorted(n for n, ok in seen.items() if ok)


def _registration(op: str, method: str, int8: bool) -> str:
    if int8 and op in INT8_REGISTRATIONS:
        return f"r.{method}(tflite::Register_{op}_INT8())"
    return f"r.{method}()"


def resolver_header(prefix: str, ops: list[str], *, banner: str,
                    int8_ops: list[str] | tuple[str, ...] = ()) -> str:
    """C++ header: `<prefix>_op_resolver_t` and `<prefix>_register_ops()` for exactly ``ops``.

    Ops in ``int8_ops`` that have an int8-only kernel are registered with it
    (`Register_CONV_2D_INT8()`: with CMSIS-NN only the int8 path is linked).
    """
    methods = resolver_methods(ops, what=f"model {prefix}")
    guard = f"{prefix.upper()}_RESOLVER_H"
    int8 = set(int8_ops)
    calls = "\n".join(f"    if ({_registration(op, m, op in int8)} != kTfLiteOk) return "
                      f"kTfLiteError; /* {op} */" for op, m in zip(ops, methods, strict=True))
    headers = sorted({INT8_REGISTRATIONS[op] for op in ops if op in int8
                      and op in INT8_REGISTRATIONS})
    includes = "".join(f'#include "tensorflow/lite/micro/kernels/{h}.h"\n' for h in headers)
    return f"""{banner}
#ifndef {guard}
#define {guard}

/* C++ only: the TFLite Micro op resolver for exactly the {len(ops)} builtin ops this model uses
 * ({", ".join(ops)}); read from the .tflite flatbuffer, nothing more is linked in. Int8-only
 * kernels where TFLite Micro has them (with CMSIS-NN they link only the int8 path). */
{includes}#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

#define {prefix.upper()}_OP_COUNT {len(ops)}u

typedef tflite::MicroMutableOpResolver<{prefix.upper()}_OP_COUNT> {prefix}_op_resolver_t;

/* Registers every op the model needs; returns kTfLiteError if one fails (call it once). */
static inline TfLiteStatus {prefix}_register_ops({prefix}_op_resolver_t &r)
{{
{calls}
    return kTfLiteOk;
}}

#endif /* {guard} */
"""

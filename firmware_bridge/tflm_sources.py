"""Which TensorFlow Lite Micro (and CMSIS-NN) source files a model's ops need, and the compiler
flags per target and kernel set: the single table behind crossl.mk and the build cache key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from crossl_edge.errors import CheckFailed, UsageError

DOWNLOADS: Final[str] = "tensorflow/lite/micro/tools/make/downloads"
KERNELS_DIR: Final[str] = "tensorflow/lite/micro/kernels"
KERNEL_SETS: Final[tuple[str, ...]] = ("reference", "cmsis_nn")
TARGETS: Final[tuple[str, ...]] = ("host", "cortex-m4")

# The TFLM framework: interpreter, allocator, planner, flatbuffer parsing, shared kernel helpers
# (tests, mocks, recording allocators and platform ports left out).
CORE_SOURCES: Final[tuple[str, ...]] = (
    "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc",
    "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
    "tensorflow/lite/array.cc",
    "tensorflow/lite/core/api/flatbuffer_conversions.cc",
    "tensorflow/lite/core/api/tensor_utils.cc",
    "tensorflow/lite/core/c/common.cc",
    "tensorflow/lite/kernels/internal/common.cc",
    "tensorflow/lite/kernels/internal/portable_tensor_utils.cc",
    "tensorflow/lite/kernels/internal/quantization_util.cc",
    "tensorflow/lite/kernels/internal/runtime_shape.cc",
    "tensorflow/lite/kernels/internal/tensor_ctypes.cc",
    "tensorflow/lite/kernels/internal/tensor_utils.cc",
    "tensorflow/lite/kernels/kernel_util.cc",
    "tensorflow/lite/micro/arena_allocator/non_persistent_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/persistent_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/arena_allocator/single_arena_buffer_allocator.cc",
    "tensorflow/lite/micro/debug_log.cc",
    "tensorflow/lite/micro/flatbuffer_utils.cc",
    "tensorflow/lite/micro/memory_helpers.cc",
    "tensorflow/lite/micro/memory_planner/greedy_memory_planner.cc",
    "tensorflow/lite/micro/memory_planner/linear_memory_planner.cc",
    "tensorflow/lite/micro/memory_planner/non_persistent_buffer_planner_shim.cc",
    "tensorflow/lite/micro/micro_allocation_info.cc",
    "tensorflow/lite/micro/micro_allocator.cc",
    "tensorflow/lite/micro/micro_context.cc",
    "tensorflow/lite/micro/micro_interpreter.cc",
    "tensorflow/lite/micro/micro_interpreter_context.cc",
    "tensorflow/lite/micro/micro_interpreter_graph.cc",
    "tensorflow/lite/micro/micro_log.cc",
    "tensorflow/lite/micro/micro_op_resolver.cc",
    "tensorflow/lite/micro/micro_profiler.cc",
    "tensorflow/lite/micro/micro_resource_variable.cc",
    "tensorflow/lite/micro/micro_time.cc",
    "tensorflow/lite/micro/micro_utils.cc",
    "tensorflow/lite/micro/system_setup.cc",
    "tensorflow/lite/micro/tflite_bridge/flatbuffer_conversions_bridge.cc",
    "tensorflow/lite/micro/tflite_bridge/micro_error_reporter.cc",
    f"{KERNELS_DIR}/kernel_util.cc",
    f"{KERNELS_DIR}/micro_tensor_utils.cc",
)

# Builtin op -> kernel files (stems in tensorflow/lite/micro/kernels/) that define its Register_*.
_ELEMENTWISE = ("elementwise",)
OP_KERNELS: Final[dict[str, tuple[str, ...]]] = {
    "ABS": _ELEMENTWISE, "COS": _ELEMENTWISE, "LOG": _ELEMENTWISE, "LOGICAL_NOT": _ELEMENTWISE,
    "RSQRT": _ELEMENTWISE, "SIN": _ELEMENTWISE, "SQRT": _ELEMENTWISE, "SQUARE": _ELEMENTWISE,
    "ADD": ("add", "add_common"), "ADD_N": ("add_n",), "ARG_MAX": ("arg_min_max",),
    "ARG_MIN": ("arg_min_max",), "AVERAGE_POOL_2D": ("pooling", "pooling_common"),
    "BATCH_MATMUL": ("batch_matmul", "batch_matmul_common"), "CAST": ("cast",),
    "CEIL": ("ceil",), "CONCATENATION": ("concatenation",), "CONV_2D": ("conv", "conv_common"),
    "DEPTHWISE_CONV_2D": ("depthwise_conv", "depthwise_conv_common"),
    "DEQUANTIZE": ("dequantize", "dequantize_common"), "DIV": ("div",), "ELU": ("elu",),
    "EQUAL": ("comparisons",), "EXP": ("exp",), "EXPAND_DIMS": ("expand_dims",),
    "FILL": ("fill",), "FLOOR": ("floor",),
    "FULLY_CONNECTED": ("fully_connected", "fully_connected_common"), "GATHER": ("gather",),
    "GREATER": ("comparisons",), "GREATER_EQUAL": ("comparisons",),
    "HARD_SWISH": ("hard_swish", "hard_swish_common"),
    "L2_NORMALIZATION": ("l2norm",),
    "LEAKY_RELU": ("leaky_relu", "leaky_relu_common"), "LESS": ("comparisons",),
    "LESS_EQUAL": ("comparisons",), "LOG_SOFTMAX": ("log_softmax",),
    "LOGISTIC": ("logistic", "logistic_common"), "MAX_POOL_2D": ("pooling", "pooling_common"),
    "MAXIMUM": ("maximum_minimum",), "MEAN": ("reduce", "reduce_common"),
    "MINIMUM": ("maximum_minimum",), "MUL": ("mul", "mul_common"), "NEG": ("neg",),
    "NOT_EQUAL": ("comparisons",), "PACK": ("pack",), "PAD": ("pad", "pad_common"),
    "PADV2": ("pad", "pad_common"), "PRELU": ("prelu", "prelu_common"),
    "QUANTIZE": ("quantize", "quantize_common"), "REDUCE_MAX": ("reduce", "reduce_common"),
    "REDUCE_MIN": ("reduce", "reduce_common"), "RELU": ("activations", "activations_common"),
    "RELU6": ("activations", "activations_common"), "RESHAPE": ("reshape", "reshape_common"),
    "SHAPE": ("shape",), "SLICE": ("slice",), "SOFTMAX": ("softmax", "softmax_common"),
    "SPLIT": ("split",), "SPLIT_V": ("split_v",), "SQUARED_DIFFERENCE": ("squared_difference",),
    "SQUEEZE": ("squeeze",), "STRIDED_SLICE": ("strided_slice", "strided_slice_common"),
    "SUB": ("sub", "sub_common"), "SUM": ("reduce", "reduce_common"), "TANH": ("tanh",),
    "TRANSPOSE": ("transpose", "transpose_common"), "TRANSPOSE_CONV": ("transpose_conv",),
    "UNPACK": ("unpack",), "ZEROS_LIKE": ("zeros_like",),
}
# Kernels with a CMSIS-NN version (kernels/cmsis_nn/<stem>.cc replaces kernels/<stem>.cc) and
# the CMSIS-NN Source/ folders each one calls into (NNSupportFunctions always).
CMSIS_KERNELS: Final[dict[str, tuple[str, ...]]] = {
    "add": ("BasicMathFunctions",), "batch_matmul": ("FullyConnectedFunctions",),
    "conv": ("ConvolutionFunctions",), "depthwise_conv": ("ConvolutionFunctions",),
    "fully_connected": ("FullyConnectedFunctions",),
    "maximum_minimum": ("BasicMathFunctions",), "mul": ("BasicMathFunctions",),
    "pad": ("PadFunctions",), "pooling": ("PoolingFunctions",),
    "softmax": ("SoftmaxFunctions",), "svdf": ("SVDFunctions",),
    "transpose": ("TransposeFunctions",), "transpose_conv": ("ConvolutionFunctions",),
}
# Ops with an int8-only registration (`Register_<OP>_INT8()`, declared in kernels/<header>.h):
# with CMSIS-NN it links only the int8 path; with reference kernels it is the generic kernel.
INT8_REGISTRATIONS: Final[dict[str, str]] = {
    "ADD": "add", "BATCH_MATMUL": "batch_matmul", "CONV_2D": "conv",
    "DEPTHWISE_CONV_2D": "depthwise_conv", "FULLY_CONNECTED": "fully_connected",
    "MAXIMUM": "maximum_minimum", "MINIMUM": "maximum_minimum", "MUL": "mul", "PAD": "pad",
    "AVERAGE_POOL_2D": "pooling", "MAX_POOL_2D": "pooling", "SOFTMAX": "softmax",
    "TRANSPOSE_CONV": "transpose_conv",
}

# Flags. TFLM needs C++17 and TF_LITE_STATIC_MEMORY on everything that includes its headers
# (otherwise TfLiteTensor has another layout and invoke fails at run time).
DEFINES: Final[tuple[str, ...]] = ("-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_STRIP_ERROR_STRINGS",
                                   "-DNDEBUG")
CXX_ONLY: Final[tuple[str, ...]] = ("-std=c++17", "-fno-rtti", "-fno-exceptions",
                                    "-fno-threadsafe-statics", "-fno-unwind-tables",
                                    "-Wno-unused-parameter")
C_ONLY: Final[tuple[str, ...]] = ("-std=c99",)
COMMON: Final[tuple[str, ...]] = ("-ffunction-sections", "-fdata-sections")
CMSIS_DEFINES: Final[tuple[str, ...]] = ("-DCMSIS_NN", "-DARM_NN_ENABLE_F16=0",
                                         "-DARM_NN_ENABLE_F32=0")
CMSIS_EXCLUDE: Final[tuple[str, ...]] = ("%_f16.c", "%_f32.c", "%/arm_nntables_flt.c")


@dataclass(frozen=True)
class Toolchain:
    """Compilers and flags of one target (what crossl.mk's CROSSL_TARGET selects)."""

    cc: str
    cxx: str
    arch: tuple[str, ...]
    opt: str


TOOLCHAINS: Final[dict[str, Toolchain]] = {
    "host": Toolchain("gcc", "g++", (), "-O2"),
    "cortex-m4": Toolchain("arm-none-eabi-gcc", "arm-none-eabi-g++",
                           ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                            "-mfpu=fpv4-sp-d16"), "-Os"),
}


def check_choice(target: str, kernels: str) -> None:
    """UsageError (exit 2) for an unknown target or kernel set."""
    if target not in TOOLCHAINS:
        raise UsageError(f"unknown firmware target {target!r}; choose one of "
                         f"{', '.join(TOOLCHAINS)}.")
    if kernels not in KERNEL_SETS:
        raise UsageError(f"unknown kernel set {kernels!r}; choose reference or cmsis_nn "
                         "(cmsis-nn is accepted too).")


def kernel_stems(ops: list[str]) -> list[str]:
    """Sorted distinct kernel file stems for ``ops``; CheckFailed for an op without a table row."""
    missing = [op for op in ops if op not in OP_KERNELS]
    if missing:
        raise CheckFailed(f"crossl-edge does not know which TFLite Micro kernel files implement "
                          f"{', '.join(missing)}; add them to firmware_bridge/tflm_sources.py.")
    return sorted({stem for op in ops for stem in OP_KERNELS[op]})


def kernel_sources(ops: list[str], kernels: str) -> list[str]:
    """TFLM kernel .cc files (relative to the TFLM root) for ``ops`` with kernel set ``kernels``."""
    out = []
    for stem in kernel_stems(ops):
        sub = "cmsis_nn/" if kernels == "cmsis_nn" and stem in CMSIS_KERNELS else ""
        out.append(f"{KERNELS_DIR}/{sub}{stem}.cc")
    return out


def cmsis_folders(ops: list[str], kernels: str) -> list[str]:
    """CMSIS-NN Source/ folders to compile (empty for reference kernels)."""
    if kernels != "cmsis_nn":
        return []
    dirs = {d for stem in kernel_stems(ops) for d in CMSIS_KERNELS.get(stem, ())}
    return sorted(dirs | {"NNSupportFunctions"})


def include_dirs() -> list[str]:
    """Include folders relative to the TFLM root."""
    return [".", f"{DOWNLOADS}/flatbuffers/include", f"{DOWNLOADS}/gemmlowp", f"{DOWNLOADS}/ruy"]


def cmsis_include_dirs() -> list[str]:
    return [f"{DOWNLOADS}/cmsis_nn", f"{DOWNLOADS}/cmsis_nn/Include"]


def flags(target: str, kernels: str) -> dict[str, list[str]]:
    """CFLAGS / CXXFLAGS (without include paths) for ``target`` and ``kernels``."""
    check_choice(target, kernels)
    tc = TOOLCHAINS[target]
    base = [*tc.arch, tc.opt, *COMMON, *DEFINES] + (list(CMSIS_DEFINES) if kernels == "cmsis_nn"
                                                    else [])
    return {"c": [*base, *C_ONLY], "cxx": [*base, *CXX_ONLY]}

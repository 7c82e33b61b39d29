"""Reading a .tflite flatbuffer: the one op iterator (op name, tensors) every stage walks with.

Needs only the `tflite` flatbuffer package, imported on first use (no TensorFlow, no runtime).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@functools.cache
def op_names() -> dict[int, str]:
    """Builtin op code -> schema name (e.g. 3 -> "CONV_2D")."""
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


@functools.cache
def tensor_type_names() -> dict[int, str]:
    """Tensor type code -> schema name (e.g. 9 -> "INT8")."""
    import tflite

    return {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}


def read_model(data: bytes) -> Any:
    """The root `tflite.Model` of ``data``."""
    import tflite

    return tflite.Model.GetRootAsModel(data, 0)


@dataclass(frozen=True)
class OpView:
    """One operator of a graph: its position, schema name and the flatbuffer objects behind it."""

    subgraph: int
    index: int
    name: str          # builtin name, or "CUSTOM:<code>" for a custom op
    op: Any            # tflite.Operator
    graph: Any         # tflite.SubGraph

    def input_tensors(self) -> list[Any]:
        """The op's input tensors (optional inputs, index -1, left out)."""
        return [self.graph.Tensors(self.op.Inputs(j)) for j in range(self.op.InputsLength())
                if self.op.Inputs(j) >= 0]

    def output_tensors(self) -> list[Any]:
        return [self.graph.Tensors(self.op.Outputs(j)) for j in range(self.op.OutputsLength())]


def _op_name(model: Any, op: Any) -> str:
    import tflite

    oc = model.OperatorCodes(op.OpcodeIndex())
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    if code == tflite.BuiltinOperator.CUSTOM:
        return f"CUSTOM:{(oc.CustomCode() or b'?').decode()}"
    return op_names().get(code, f"BUILTIN_{code}")


def iter_ops(model: Any, *, subgraph: int | None = None) -> Iterator[OpView]:
    """Every operator of ``model`` (a `read_model` result) in graph order; all subgraphs, or
    only ``subgraph``."""
    graphs = range(model.SubgraphsLength()) if subgraph is None else (subgraph,)
    for s in graphs:
        g = model.Subgraphs(s)
        for i in range(g.OperatorsLength()):
            op = g.Operators(i)
            yield OpView(s, i, _op_name(model, op), op, g)


def builtin_ops(data: bytes) -> list[str]:
    """Sorted distinct op names a .tflite uses (all subgraphs); custom ops as CUSTOM:name."""
    return sorted({v.name for v in iter_ops(read_model(data))})


def op_count(data: bytes) -> int:
    """Number of operators in subgraph 0."""
    return int(read_model(data).Subgraphs(0).OperatorsLength())

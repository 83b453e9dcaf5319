"""Refuse ONNX files that would make a runtime open other files or load other code, before any runtime sees them.

An ONNX model can name *external data*: a tensor whose bytes live in another file, at a path the model file
gives (``TensorProto.data_location = EXTERNAL`` with a ``location`` entry), which onnxruntime opens relative to
the model. It can also use operators of a *custom domain*, which only a runtime that loaded a custom-operator
library (native code) can run. Files written by :mod:`sb3_dqn_atari.export` do neither, so
:func:`check_onnx_bytes` refuses both, wherever they hide: the graph's initializers and sparse initializers,
``Constant``-style tensor attributes, subgraphs of control-flow nodes (``If``/``Loop``/``Scan``), model-local
functions and training graphs.

The bytes are parsed with the ``onnx`` package's protobuf classes (nothing of the model is run, and protobuf
merges repeated fields exactly as onnxruntime's parser does); the bytes that pass are the bytes given to
onnxruntime (:class:`sb3_dqn_atari.onnx.runtime.OnnxAgent` builds its session from them, not from the path), so
nothing is read twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sb3_dqn_atari.common.errors import UserError, one_line
from sb3_dqn_atari.common.files import read_bounded

if TYPE_CHECKING:
    from onnx import GraphProto, NodeProto, SparseTensorProto, TensorProto

#: Operator domains a node may use: those every onnxruntime build runs without a custom-operator library (the
#: ONNX standard operators, ``""`` = ``"ai.onnx"``, ONNX-ML, and onnxruntime's built-in contrib operators).
STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
#: Domains an opset import may also *declare* without using them: the ONNX and onnxruntime domains that
#: ``onnxruntime.quantization``'s pre-processing lists in every model it writes (the int8 export's).
DECLARED_DOMAINS = STANDARD_DOMAINS | {
    "ai.onnx.training",
    "ai.onnx.preview",
    "ai.onnx.preview.training",
    "com.microsoft.experimental",
    "com.microsoft.nchwc",
    "org.pytorch.aten",
}
#: Largest ONNX file read (protobuf's own limit is 2 GiB).
MAX_ONNX_BYTES = 2 << 30
#: Deepest nesting of subgraphs followed.
MAX_GRAPH_DEPTH = 32


class UnsafeOnnxError(UserError):
    """An ONNX file that names external data or a custom operator domain, or is not a readable protobuf."""


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def refuse(self, what: str) -> UnsafeOnnxError:
        return UnsafeOnnxError(f"{self.source} {what}; refusing it (export the agent again with sb3_dqn_atari.export)")

    def domain(self, domain: str, where: str, allowed: frozenset[str] = STANDARD_DOMAINS) -> None:
        if domain not in allowed:  # (bytes for a domain that is not UTF-8)
            shown = one_line(str(domain), 80)
            raise self.refuse(f"uses the custom operator domain {shown!r} ({where}), which needs native code to run")

    def tensors(self, tensors: Iterable[TensorProto]) -> None:
        from onnx import TensorProto

        for tensor in tensors:
            if tensor.external_data or tensor.data_location == TensorProto.EXTERNAL:
                label = repr(tensor.name[:80]) if tensor.name else "(unnamed)"
                raise self.refuse(f"keeps the tensor {label} in external data (another file, at a path it names)")

    def sparse_tensors(self, sparse: Iterable[SparseTensorProto]) -> None:
        for tensor in sparse:
            self.tensors((tensor.values, tensor.indices))

    def nodes(self, nodes: Iterable[NodeProto], depth: int) -> None:
        for node in nodes:
            self.domain(node.domain, "a node")
            for attribute in node.attribute:
                self.tensors((attribute.t, *attribute.tensors))
                self.sparse_tensors((attribute.sparse_tensor, *attribute.sparse_tensors))
                for graph in (attribute.g, *attribute.graphs) if attribute.HasField("g") else attribute.graphs:
                    self.graph(graph, depth + 1)

    def graph(self, graph: GraphProto, depth: int) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise self.refuse(f"nests subgraphs more than {MAX_GRAPH_DEPTH} deep")
        self.tensors(graph.initializer)
        self.sparse_tensors(graph.sparse_initializer)
        self.nodes(graph.node, depth)


def check_onnx_bytes(data: bytes, source: str = "the ONNX file") -> None:
    """Raise :class:`UnsafeOnnxError` if the serialized ``ModelProto`` names external data or a custom
    operator domain anywhere, or is not a well-formed protobuf with a graph."""
    from google.protobuf.message import DecodeError
    from onnx import ModelProto  # imported here: ~0.3 s, paid only when an ONNX file is checked

    try:
        model = ModelProto.FromString(data)
    except (DecodeError, ValueError) as exc:
        raise UnsafeOnnxError(f"{source} is not a readable ONNX model ({exc})") from None
    if not model.HasField("graph"):
        raise UnsafeOnnxError(f"{source} is not a readable ONNX model (no graph)")
    checker = _Checker(source)
    for opset in model.opset_import:
        checker.domain(opset.domain, "an opset import", DECLARED_DOMAINS)
    checker.graph(model.graph, 0)
    for info in model.training_info:
        checker.graph(info.initialization, 1)
        checker.graph(info.algorithm, 1)
    for function in model.functions:
        checker.domain(function.domain, "a model-local function")
        for opset in function.opset_import:
            checker.domain(opset.domain, "a function's opset import", DECLARED_DOMAINS)
        checker.nodes(function.node, 1)


def read_checked_onnx(path: str | Path, source: str | None = None) -> bytes:
    """The bytes of the ONNX file at ``path``, after :func:`check_onnx_bytes` (its size checked first);
    messages name it ``source`` (default: the path)."""
    source = source or str(path)
    message = f"{source} is larger than {MAX_ONNX_BYTES:,} bytes; refusing it"
    data = read_bounded(path, MAX_ONNX_BYTES, source, lambda: UnsafeOnnxError(message))
    check_onnx_bytes(data, source)
    return data

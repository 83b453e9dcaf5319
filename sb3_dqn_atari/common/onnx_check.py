"""Refuse ONNX files that would make a runtime open other files or load other code, before any runtime sees them.

An ONNX model can name *external data*: a tensor whose bytes live in another file, at a path the model file
gives (``TensorProto.data_location = EXTERNAL`` with a ``location`` entry), which onnxruntime opens relative to
the model. It can also use operators of a *custom domain*, which only a runtime that loaded a custom-operator
library (native code) can run. Files written by :mod:`sb3_dqn_atari.export` do neither, so
:func:`check_onnx_bytes` refuses both, wherever they hide: the graph's initializers and sparse initializers,
``Constant``-style tensor attributes, subgraphs of control-flow nodes (``If``/``Loop``/``Scan``), model-local
functions and training graphs.

The check reads the protobuf wire format itself (varints and length-delimited fields, the field numbers of
``onnx.proto3``), so that the ONNX player needs neither torch nor the ``onnx`` package; unknown fields are
skipped. The bytes that pass are the bytes given to onnxruntime (:class:`sb3_dqn_atari.onnx.runtime.OnnxAgent`
builds its session from them, not from the path), so nothing is read twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sb3_dqn_atari.common.errors import UserError
from sb3_dqn_atari.common.files import read_bounded

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

# Field numbers (onnx/onnx.proto3) of the messages that can hold tensors, subgraphs or domains.
_MODEL = {"opset_import": 8, "graph": 7, "training_info": 20, "functions": 25}
_TRAINING_INFO = {"initialization": 1, "algorithm": 2}
_GRAPH = {"node": 1, "initializer": 5, "sparse_initializer": 15}
_NODE = {"domain": 7, "attribute": 5}
_ATTRIBUTE = {"t": 5, "g": 6, "tensors": 10, "graphs": 11, "sparse_tensor": 22, "sparse_tensors": 23}
_TENSOR = {"name": 8, "external_data": 13, "data_location": 14}
_SPARSE_TENSOR = {"values": 1, "indices": 2}
_OPSET = {"domain": 1}
_FUNCTION = {"node": 7, "opset_import": 9, "domain": 10}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
#: ``(field number, wire type, value)`` of one message
_Fields = list[tuple[int, int, int | memoryview]]


class UnsafeOnnxError(UserError):
    """An ONNX file that names external data or a custom operator domain, or is not a readable protobuf."""


class _Malformed(Exception):
    pass


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview) -> _Fields:
    """``(field number, wire type, value)`` of one message: an int for varints, the bytes for the rest."""
    out: _Fields = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if number == 0:
            raise _Malformed("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise _Malformed("a field runs past the end of its message")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:  # groups (3, 4) are not used by ONNX; 6, 7 do not exist
            raise _Malformed(f"wire type {wire}")
        if pos > len(data):
            raise _Malformed("truncated field")
        out.append((number, wire, value))
    return out


def _messages(fields: _Fields, number: int) -> list[memoryview]:
    found = []
    for n, wire, value in fields:
        if n == number:
            if wire != 2 or isinstance(value, int):
                raise _Malformed(f"field {number} is not a message")
            found.append(value)
    return found


def _text(value: memoryview) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Malformed("a string that is not UTF-8") from exc


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def refuse(self, what: str) -> UnsafeOnnxError:
        return UnsafeOnnxError(f"{self.source} {what}; refusing it (export the agent again with sb3_dqn_atari.export)")

    def domains(self, fields: _Fields, number: int, where: str, allowed: frozenset[str] = STANDARD_DOMAINS) -> None:
        """The operator domains in field ``number`` of a message."""
        for n, _, value in fields:
            if n != number or not isinstance(value, memoryview) or (domain := _text(value)) in allowed:
                continue
            shown = domain if len(domain) <= 80 else domain[:77] + "..."
            raise self.refuse(f"uses the custom operator domain {shown!r} ({where}), which needs native code to run")

    @staticmethod
    def each(fields: _Fields, numbers: Iterable[int], check: Callable[..., None], *args: Any) -> None:
        """``check(message, *args)`` for every sub-message in the fields ``numbers``, in that order."""
        for number in numbers:
            for message in _messages(fields, number):
                check(message, *args)

    def tensor(self, data: memoryview) -> None:
        fields = _fields(data)
        names = [_text(v) for n, w, v in fields if n == _TENSOR["name"] and isinstance(v, memoryview)]
        label = repr(names[0][:80]) if names else "(unnamed)"
        location = [v for n, _, v in fields if n == _TENSOR["data_location"]]
        if _messages(fields, _TENSOR["external_data"]) or any(v == _EXTERNAL for v in location):
            raise self.refuse(f"keeps the tensor {label} in external data (another file, at a path it names)")

    def sparse_tensor(self, data: memoryview) -> None:
        self.each(_fields(data), _SPARSE_TENSOR.values(), self.tensor)

    def node(self, data: memoryview, depth: int) -> None:
        fields = _fields(data)
        self.domains(fields, _NODE["domain"], "a node")
        for attribute in _messages(fields, _NODE["attribute"]):
            attr = _fields(attribute)
            self.each(attr, (_ATTRIBUTE["t"], _ATTRIBUTE["tensors"]), self.tensor)
            self.each(attr, (_ATTRIBUTE["sparse_tensor"], _ATTRIBUTE["sparse_tensors"]), self.sparse_tensor)
            self.each(attr, (_ATTRIBUTE["g"], _ATTRIBUTE["graphs"]), self.graph, depth + 1)

    def graph(self, data: memoryview, depth: int) -> None:
        if depth > MAX_GRAPH_DEPTH:
            raise self.refuse(f"nests subgraphs more than {MAX_GRAPH_DEPTH} deep")
        fields = _fields(data)
        self.each(fields, (_GRAPH["initializer"],), self.tensor)
        self.each(fields, (_GRAPH["sparse_initializer"],), self.sparse_tensor)
        self.each(fields, (_GRAPH["node"],), self.node, depth)

    def opset(self, data: memoryview, where: str) -> None:
        self.domains(_fields(data), _OPSET["domain"], where, DECLARED_DOMAINS)

    def model(self, data: memoryview) -> None:
        fields = _fields(data)
        graphs = _messages(fields, _MODEL["graph"])
        if len(graphs) != 1:
            raise _Malformed("no graph" if not graphs else "several graphs")
        self.each(fields, (_MODEL["opset_import"],), self.opset, "an opset import")
        self.graph(graphs[0], 0)
        for info in _messages(fields, _MODEL["training_info"]):
            self.each(_fields(info), _TRAINING_INFO.values(), self.graph, 1)
        for function in _messages(fields, _MODEL["functions"]):
            function_fields = _fields(function)
            self.domains(function_fields, _FUNCTION["domain"], "a model-local function")
            self.each(function_fields, (_FUNCTION["opset_import"],), self.opset, "a function's opset import")
            self.each(function_fields, (_FUNCTION["node"],), self.node, 1)


def check_onnx_bytes(data: bytes, source: str = "the ONNX file") -> None:
    """Raise :class:`UnsafeOnnxError` if the serialized ``ModelProto`` names external data or a custom
    operator domain anywhere, or is not a well-formed protobuf with one graph."""
    checker = _Checker(source)
    try:
        checker.model(memoryview(data))
    except _Malformed as exc:
        raise UnsafeOnnxError(f"{source} is not a readable ONNX model ({exc})") from None
    except RecursionError:
        raise UnsafeOnnxError(f"{source} nests its messages too deeply to be read") from None


def read_checked_onnx(path: str | Path, max_bytes: int = MAX_ONNX_BYTES, source: str | None = None) -> bytes:
    """The bytes of the ONNX file at ``path``, after :func:`check_onnx_bytes` (its size checked first);
    messages name it ``source`` (default: the path)."""
    source = source or str(path)
    message = f"{source} is larger than {max_bytes:,} bytes; refusing it"
    data = read_bounded(path, max_bytes, source, lambda: UnsafeOnnxError(message))
    check_onnx_bytes(data, source)
    return data

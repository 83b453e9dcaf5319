"""The graph an export writes: the policy's Q-values and greedy action traced with ``torch.onnx.export``, its metadata,
and the optional int8 quantization (see :mod:`sb3_dqn_atari.onnx.export`)."""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import tempfile
import warnings
from collections.abc import Iterator
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
import torch

from sb3_dqn_atari.loading import UserError
from sb3_dqn_atari.onnx.runtime import ACTION_NAME, INPUT_NAME, Q_VALUES_NAME

if TYPE_CHECKING:
    from stable_baselines3.common.base_class import BaseAlgorithm


#: Default opset: widely supported (onnxruntime >= 1.14, onnxruntime-web), and native to the torch.export exporter.
DEFAULT_OPSET = 18


class QValueGraph(torch.nn.Module):
    """``obs -> (q_values, greedy action)`` for DQN-family policies.

    DQN / NatureDQN: ``policy.q_net`` (SB3's ``QNetwork``: ``preprocess_obs`` (``/255`` for images),
    features extractor, linear head). QR-DQN: ``policy.quantile_net``, averaged over quantiles as
    ``QuantileNetwork._predict`` does.
    """

    def __init__(self, policy: torch.nn.Module) -> None:
        super().__init__()
        net = getattr(policy, "quantile_net", None) or getattr(policy, "q_net", None)
        if isinstance(net, torch.nn.Module):
            self.net = net
            self.quantiles = hasattr(policy, "quantile_net")
        else:
            raise UserError(f"{type(policy).__name__} has no q_net or quantile_net: not a DQN-family policy")

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(obs)
        q_values = out.mean(dim=1) if self.quantiles else out
        return q_values, q_values.argmax(dim=1)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's progress prints, its torchvision notices and deprecation warnings."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def torch_to_onnx(model: BaseAlgorithm, opset: int = DEFAULT_OPSET, dynamo: bool = True) -> onnx.ModelProto:
    """Trace the Q-value graph with ``torch.onnx.export`` (``torch.export``-based by default), dynamic batch.

    The example batch has 2 observations: ``torch.export`` specialises dimensions seen as 0 or 1.
    Node-level ``pkg.torch.*`` annotations are dropped (they name Python source lines, nothing a runtime uses).
    """
    policy = model.policy if model.device.type == "cpu" else copy.deepcopy(model.policy).cpu()
    graph = QValueGraph(policy).eval()
    space = model.observation_space
    assert space.shape is not None and space.dtype is not None
    example = torch.as_tensor(np.stack([space.sample() for _ in range(2)]))
    outputs = [Q_VALUES_NAME, ACTION_NAME]
    options: dict[str, Any] = {"input_names": [INPUT_NAME], "output_names": outputs, "opset_version": opset}
    with _quiet_exporter(), torch.no_grad():
        if dynamo:
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                external_data=False,
                dynamic_shapes={"obs": {0: torch.export.Dim("batch")}},
                optimize=True,
                verbose=False,
                **options,
            )
            assert program is not None
            proto = program.model_proto
        else:
            batch_axes = {name: {0: "batch"} for name in (INPUT_NAME, *outputs)}
            with tempfile.TemporaryDirectory() as tmp:
                legacy_path = Path(tmp) / "legacy.onnx"
                torch.onnx.export(graph, (example,), legacy_path, dynamo=False, dynamic_axes=batch_axes, **options)
                proto = onnx.load(str(legacy_path))
    # value_info entries of initializers restate their shapes; onnxruntime's quantizer transposes Gemm weights
    # and then trips over the stale entries, so keep value_info for computed tensors only.
    initializers = {init.name for init in proto.graph.initializer}
    computed = [v for v in proto.graph.value_info if v.name not in initializers]
    del proto.graph.value_info[:]
    proto.graph.value_info.extend(computed)
    for node in proto.graph.node:
        del node.metadata_props[:]
    for value in [*proto.graph.input, *proto.graph.output, *proto.graph.value_info]:
        del value.metadata_props[:]
    del proto.graph.metadata_props[:]
    proto.producer_name = "sb3-dqn-atari"
    proto.producer_version = package_version("sb3-dqn-atari")
    return proto


def add_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    """Set ``props`` in ``proto``'s ``metadata_props``, keeping its other entries."""
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **props})


def package_version(package: str) -> str:
    try:
        return importlib_metadata.version(package)
    except importlib_metadata.PackageNotFoundError:
        if package == "sb3-dqn-atari":
            from sb3_dqn_atari import __version__

            return __version__
        return "not installed"


def quantize(float_path: Path, proto: onnx.ModelProto) -> onnx.ModelProto:
    """int8 dynamic quantization (``quantize_dynamic``: uint8 weights, activations quantized at run time, Conv and
    MatMul/Gemm), after onnxruntime's recommended ``quant_pre_process`` (shape inference, graph optimization).
    uint8 rather than int8 weights: onnxruntime's CPU ``ConvInteger`` is about 2x faster with them here."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(dir=float_path.parent, prefix=".quantize.") as tmp:
        plain = Path(tmp) / "float.onnx"
        prepared = Path(tmp) / "prepared.onnx"
        out = Path(tmp) / "int8.onnx"
        onnx.save_model(proto, str(plain))
        with _quiet_exporter():
            quant_pre_process(str(plain), str(prepared))
            quantize_dynamic(str(prepared), str(out), weight_type=QuantType.QUInt8)
        quantized = onnx.load(str(out))
    how = "int8 dynamic (onnxruntime.quantization.quantize_dynamic, QUInt8 weights)"
    onnx.helper.set_model_props(quantized, {**{p.key: p.value for p in proto.metadata_props}, "quantization": how})
    return quantized

"""Which regime DeepMind's RMSProp is in, read from a trained agent's optimizer state (issue 14).

:class:`~sb3_dqn_atari.agent.optim.DeepMindRMSprop` (the Lua code's ``qLearnMinibatch``) steps each weight by
``lr · grad / sqrt(g2 − g² + eps)``. Where ``g2 − g²`` (the running variance of that weight's gradient) is much
smaller than ``eps``, the denominator is ``sqrt(eps)`` and the update is plain SGD at rate ``lr / sqrt(eps)``: a step
proportional to the gradient, not the normalised step that an adaptive optimizer (Adam, RMSProp with a small
``eps``) takes. Which regime the paper's constants put the agent in depends on the gradients' scale, i.e. on the
network, the clipped rewards and the clipped error, all of which are the paper's here.

Reads ``policy.optimizer.pth`` and ``policy.pth`` of an SB3 zip (a checkpoint's ``model.zip``) with
``torch.load(weights_only=True)`` (tensors and plain containers only, each member's size bounded first), and prints
for each of the online network's parameters: the share of its weights with ``g2 − g² < eps``, and the median and
largest ``sqrt(g2 − g² + eps) / sqrt(eps)`` (1: SGD at ``lr / sqrt(eps)``; larger: that much smaller a step).

    python benchmarks/optimizer_regime.py logs/dqn/PongNoFrameskip-v4_1/checkpoints/step_000002500000/model.zip
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path
from typing import Any

import torch

from sb3_dqn_atari.common.bounded_zip import read_member


def load_member(zip_path: Path, name: str) -> Any:
    """``name`` of the zip, through ``torch.load(weights_only=True)`` after a bounded read."""
    with zipfile.ZipFile(zip_path) as archive:
        payload = read_member(archive, name, str(zip_path))
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def regime(zip_path: Path) -> str:
    """The table for one zip (see the module docstring)."""
    optimizer = load_member(zip_path, "policy.optimizer.pth")
    weights = load_member(zip_path, "policy.pth")
    # SB3's DQNPolicy builds its optimizer on q_net.parameters(), in state-dict order
    names = [k for k in weights if k.startswith("q_net.")]
    group = optimizer["param_groups"][0]
    eps, lr = float(group["eps"]), float(group["lr"])
    if "alpha" not in group or len(optimizer["param_groups"]) != 1:
        raise SystemExit(f"{zip_path}: not a DeepMindRMSprop state (param groups: {optimizer['param_groups']})")
    lines = [
        f"{zip_path}: lr {lr:g}, eps {eps:.4g}: SGD rate lr/sqrt(eps) = {lr / eps ** 0.5:.4g}",
        "| parameter | weights | g2 − g² < eps | sqrt(g2 − g² + eps)/sqrt(eps): median | max |",
        "|---|---|---|---|---|",
    ]
    total = below = 0
    for index, name in zip(group["params"], names, strict=True):
        state = optimizer["state"][index]
        variance = state["square_avg"] - state["grad_avg"] ** 2
        if variance.shape != weights[name].shape:
            raise SystemExit(f"{zip_path}: optimizer state {index} {tuple(variance.shape)} is not {name}")
        ratio = torch.sqrt(variance.clamp(min=0) + eps) / eps**0.5
        n_below = int((variance < eps).sum())
        total += variance.numel()
        below += n_below
        lines.append(
            f"| {name} | {variance.numel():,} | {n_below / variance.numel():.2%} | "
            f"{float(ratio.median()):.3f} | {float(ratio.max()):.2f} |"
        )
    lines.append(f"| all | {total:,} | {below / total:.3%} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("zips", type=Path, nargs="+", help="SB3 zips of NatureDQN agents (a checkpoint's model.zip)")
    for zip_path in parser.parse_args().zips:
        print(regime(zip_path))


if __name__ == "__main__":
    main()

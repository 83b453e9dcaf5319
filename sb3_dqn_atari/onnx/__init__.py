"""ONNX: the export, verified against PyTorch (:mod:`~sb3_dqn_atari.onnx.export`), and the torch-free runtime
that plays an exported file (:mod:`~sb3_dqn_atari.onnx.runtime`). Importing this package imports nothing else."""

"""The shared layer, torch-free: errors and the one CLI runner, files written atomically, the safe YAML reader,
the allow-lists for strangers' files (trust, pickles, zips, ONNX graphs, run folders), env ids."""

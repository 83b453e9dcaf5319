"""The Atari side: the paper's preprocessing (torch-free), the wrapper rl-zoo3 applies, the envs of each use."""

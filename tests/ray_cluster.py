"""A real two-node Ray cluster on 127.0.0.1 for the sweep tests, run in its own process.

``ray start --head`` plus ``ray start --address=…`` is how a cluster is made by hand; on Linux a second node
started that way advertises the machine's network address (``ray start`` refuses loopback-only clusters outside
macOS/Windows), so the test cluster is built by Ray's own multi-node test utility, :class:`ray.cluster_utils.Cluster`
(the same processes: a GCS, one raylet and object store per node, worker processes), with every address on
127.0.0.1 (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``). Small object stores (100 MiB), one CPU per node.

``python -m tests.ray_cluster`` prints one JSON line (``address``, ``nodes``: node ids, head first), then reads
commands on stdin: ``remove <node id>`` kills a worker node (a node failure), ``stop`` (or end of input) shuts
the cluster down and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

from tests.conftest import ROOT

#: what every process of the test cluster, its drivers and workers need in their environment
CLUSTER_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # every address on 127.0.0.1
    "RAY_AUTH_MODE": "disabled",  # loopback only; no token file in the home folder
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_worker_niceness": "0",  # Ray's default 15 starves the trials on a machine busy with other work
    "OMP_NUM_THREADS": "1",
}
OBJECT_STORE_BYTES = 100 * 1024 * 1024


def _serve(num_nodes: int) -> None:
    from ray.cluster_utils import Cluster

    node_args = {
        "num_cpus": 1,
        "num_gpus": 0,
        "object_store_memory": OBJECT_STORE_BYTES,
        "node_ip_address": "127.0.0.1",
    }
    cluster = Cluster(initialize_head=True, head_node_args={**node_args, "include_dashboard": False})
    try:
        nodes = [cluster.head_node] + [cluster.add_node(**node_args) for _ in range(num_nodes - 1)]
        cluster.wait_for_nodes()
        print(json.dumps({"address": cluster.address, "nodes": [n.node_id for n in nodes]}), flush=True)
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "stop":
                break
            if command == "remove":  # a node failure: its raylet, object store and workers killed at once
                (node,) = [n for n in nodes[1:] if n.node_id == argument]
                cluster.remove_node(node, allow_graceful=False)
                print("removed", flush=True)
    finally:
        cluster.shutdown()


class TestCluster:
    """The running test cluster: its ``address``, its ``nodes`` (ids, head first), and node failures on demand."""

    def __init__(self, process: subprocess.Popen[str], info: dict[str, Any]) -> None:
        self.process = process
        self.address: str = info["address"]
        self.nodes: list[str] = info["nodes"]

    def remove_node(self, node_id: str) -> None:
        """Kill a (non-head) node: all its Ray processes, without warning."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"remove {node_id}\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "removed"


@contextlib.contextmanager
def ray_cluster(num_nodes: int = 2, timeout: float = 120.0) -> Iterator[TestCluster]:
    """Start the cluster in a child process; yield it; always shut it down."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.ray_cluster", str(num_nodes)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **CLUSTER_ENV},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line, f"the test cluster did not start (exit status {process.poll()})"
        yield TestCluster(process, json.loads(line))
    finally:
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.write("stop\n")
                process.stdin.close()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    _serve(int(sys.argv[1]) if len(sys.argv) > 1 else 2)

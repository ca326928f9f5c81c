"""A node killed with SIGKILL leaves no admission worker processes behind (they ask the kernel to
be killed with their parent; ``node/admission.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from autarky.node.node import Node, NodeSettings, init_data_dir
    from autarky.web.testing import TestKeys, standard_genesis

    async def main() -> None:
        data_dir = Path(sys.argv[1])
        init_data_dir(data_dir, standard_genesis(TestKeys.create()))
        node = await Node.open(NodeSettings(data_dir=data_dir, verify_processes=2))
        await node.start()
        await node.start_admission_workers()
        pids = [process.pid for process in node._admission_executor._processes.values()]
        print(" ".join(str(pid) for pid in pids), flush=True)
        await asyncio.sleep(600)

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


def test_a_killed_node_leaves_no_worker_processes(tmp_path: Path) -> None:
    script = tmp_path / "node_with_workers.py"
    script.write_text(SCRIPT)
    process = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "node")], stdout=subprocess.PIPE, text=True
    )
    workers: list[int] = []
    try:
        assert process.stdout is not None
        workers = [int(pid) for pid in process.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers), "workers outlived the killed node"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)

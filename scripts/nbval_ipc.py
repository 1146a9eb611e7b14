"""pytest plugin for ``make notebooks-check``: nbval's kernels talk over IPC sockets, not TCP.

pytest-xdist runs nbval in two processes; with TCP, jupyter_client picks each kernel's ports
by binding port 0 and releasing it, and two kernels started at the same moment can be given
the same port (one dies with "Address already in use"). As ``executed_notebooks.ipc_kernels``
does for the pre-execution and the robustness check, each kernel gets IPC socket files in a
fresh temporary folder. Loaded with ``-p nbval_ipc`` (``scripts/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import nbval.kernel
from jupyter_client.manager import KernelManager


class IpcKernelManager(KernelManager):
    """A KernelManager whose kernel binds IPC sockets in a folder of its own."""

    def __init__(self, **kwargs):
        kwargs.setdefault("transport", "ipc")
        kwargs.setdefault("ip", str(Path(tempfile.mkdtemp(prefix="kernel-ipc-")) / "kernel"))
        super().__init__(**kwargs)


nbval.kernel.KernelManager = IpcKernelManager

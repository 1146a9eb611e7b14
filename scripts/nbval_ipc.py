"""pytest plugin for ``make notebooks-check``: nbval's kernels talk over IPC sockets, not TCP.

pytest-xdist runs nbval in two processes; with TCP two kernels started at the same moment can
be given the same port (see ``executed_notebooks.ipc_kernels``, which the pre-execution and the
robustness check use too). nbval builds its ``KernelManager`` without a configuration, so this
plugin hands it that one. Loaded with ``-p nbval_ipc`` (``scripts/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import nbval.kernel
from executed_notebooks import ipc_kernels
from jupyter_client.manager import KernelManager


class IpcKernelManager(KernelManager):
    """A KernelManager configured by :func:`executed_notebooks.ipc_kernels` (a fresh folder each)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("config", ipc_kernels())
        super().__init__(**kwargs)


nbval.kernel.KernelManager = IpcKernelManager

"""Kernels on Unix sockets in a private folder, each kernel under socket names of its own.

A kernel holds the passwords a person types or a stage reads. ipykernel's default is plain-text TCP
on loopback, which any local user can reach; these kernels talk over Unix sockets in a folder only
this user can enter. Two kernels given the same socket name bind over each other's sockets, and
each then reads the other's signed messages ("Invalid Signature"): every kernel gets its own.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from jupyter_client.connect import ConnectionFileMixin
from traitlets import Unicode, default

from ..errors import TkgsError


def new_socket_folder(prefix: str = "tkgs-") -> Path:
    """A new private (0700) folder for kernel sockets, with a short path; the caller removes it.

    Not Jupyter's runtime folder: under a long home folder its socket paths pass the 107 bytes a
    Unix socket path may have, and the kernel then never starts."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))


class PrivateSockets(ConnectionFileMixin):
    """Mixed in before a jupyter_client kernel manager: its kernel on Unix sockets in ``socket_folder``,
    named ``<folder>/<8 hex digits>-<n>`` (jupyter_client appends ``-<n>`` per channel)."""

    socket_folder = Unicode(config=True, help="The private folder the kernels' Unix sockets are made in.")

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    def _ip_default(self) -> str:
        if not self.socket_folder:
            raise TkgsError("a kernel on private sockets was started without a socket folder: set socket_folder.")
        return str(Path(self.socket_folder) / uuid.uuid4().hex[:8])

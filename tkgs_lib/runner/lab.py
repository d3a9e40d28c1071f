"""JupyterLab for stepping through the notebooks by hand: on loopback, its kernels on private Unix sockets."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

from jupyter_server.services.kernels.kernelmanager import ServerKernelManager

from ..errors import TkgsError
from .kernels import PrivateSockets, new_socket_folder


class LabKernelManager(PrivateSockets, ServerKernelManager):
    """The lab's kernel manager (one per kernel): each kernel on sockets of its own in the lab's private
    folder. JupyterLab reopens a workspace's notebooks together, so kernels start side by side."""


def run_lab(folder: Path, port: Optional[int] = None, open_browser: bool = True) -> int:
    """Serve ``folder`` in JupyterLab until it stops; its exit status. As root (as the setup asks) it
    adds --allow-root, which JupyterLab otherwise refuses to start without."""
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise TkgsError(f"{folder} is not a folder of notebooks; give the folder to open, e.g. notebooks/.")
    sockets = new_socket_folder("tkgs-lab-")
    manager = f"{LabKernelManager.__module__}.{LabKernelManager.__name__}"
    # Loopback only; and no news or update checks, which would reach for the internet.
    argv = [sys.executable, "-m", "jupyterlab", str(folder), "--ServerApp.ip=127.0.0.1",
            f"--MappingKernelManager.kernel_manager_class={manager}", f"--LabKernelManager.socket_folder={sockets}",
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        print("running as root: JupyterLab is started with --allow-root (it refuses root otherwise).",
              file=sys.stderr, flush=True)
        argv.append("--allow-root")
    if port:  # the port asked for or none: a browser or tunnel pointed at it must find this lab
        argv += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if not open_browser:
        argv.append("--ServerApp.open_browser=False")
    try:
        lab = subprocess.Popen(argv)
        signal.signal(signal.SIGTERM, lambda *_: lab.terminate())  # pass a stop on; the sockets go after it
        while True:
            try:
                return lab.wait()
            except KeyboardInterrupt:  # JupyterLab has the same Ctrl-C and asks whether to stop
                continue
    finally:
        shutil.rmtree(sockets, ignore_errors=True)

"""Run folders: a new one per run, an existing one continued (``--run-folder``), and the lock that lets one
apply per site and vCenter run at a time on this machine."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from ..errors import TkgsError
from ..site import Site
from ..site.patterns import SITE_NAME
from .stage_list import StageList

__all__ = ["new_run_folder", "open_run_folder", "apply_lock"]


def new_run_folder(site: Site, output: Path) -> Path:
    """A new folder ``<site>-<timestamp>`` under ``output``, as an absolute path (a relative
    ``output`` is taken from the caller's working folder); a site name that is not a plain name
    (a path like ``../x`` or ``/tmp/x``) is refused before anything is made."""
    output = Path(output).absolute()

    name = site.site or "site"
    if not SITE_NAME.match(name):
        raise TkgsError(f"site {name!r} cannot name a run folder: use letters, digits, '.', '_' and '-' only.")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = output / f"{name}-{stamp}"
    n = 1
    try:
        while folder.exists():
            n += 1
            folder = output / f"{name}-{stamp}-{n}"
        folder.mkdir(parents=True)
    except OSError as exc:
        raise TkgsError(f"cannot create the run folder {folder}: {exc.strerror or exc}; "
                        f"choose another --output.") from None
    return folder


def open_run_folder(site, folder: Path) -> Path:
    """``folder`` (absolute; made when missing) for continuing ``site``'s run: refused when it holds
    another site's run, or is not a folder."""
    folder = Path(folder).absolute()
    if folder.exists() and not folder.is_dir():
        raise TkgsError(f"the run folder {folder} is a file; give a folder for --run-folder.")
    record = StageList.read(folder)
    if record is not None and record.site != site.site:
        raise TkgsError(f"the run folder {folder} holds the run of site {record.site!r}, not {site.site!r}: give "
                        f"each site its own --run-folder.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TkgsError(f"cannot create the run folder {folder}: {exc.strerror or exc}; choose another "
                        f"--run-folder.") from None
    return folder


def apply_lock(site: Site, run_folder: Path):
    """One apply at a time per site and vCenter from this machine: two at once would each make the
    libraries the other is making. Returns the open lock file (closing it releases the lock); TkgsError
    names the holder."""
    import fcntl
    import hashlib

    from ..paths import cache_dir

    target = f"{site.vcenter.server}:{site.vcenter.port}" if site.vcenter else "no vCenter"
    key = hashlib.sha256(f"{target}/{site.site}".encode()).hexdigest()[:16]
    folder = cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / f"{key}.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another run"
        handle.close()
        raise TkgsError(f"another apply of site {site.site!r} against vCenter {target} is running ({holder}): wait "
                        f"for it to end, then run again; two at once would each create what the other is creating.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"run folder {run_folder}, process {os.getpid()}, since {datetime.now():%Y-%m-%d %H:%M:%S}")
    handle.flush()
    return handle

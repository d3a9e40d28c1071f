"""Where things are: the checkout's folders, and the paths a notebook is given.

The runner gives every notebook absolute paths. A person (JupyterLab, or papermill by hand) may
run a notebook from anywhere, so a relative site file is looked for in the working folder first,
then in the checkout; and a notebook run by hand writes into a run folder of its own under the
checkout's ``runs/`` (ignored by git), never beside the committed notebooks.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import SiteError

CHECKOUT = Path(__file__).resolve().parent.parent  # notebooks/, examples/ and runs/ live here
NOTEBOOKS = Path(os.environ.get("TKGS_NOTEBOOKS") or CHECKOUT / "notebooks")
RUNS = Path(os.environ.get("TKGS_RUNS_DIR") or CHECKOUT / "runs")  # run folders made by hand go here
BY_HAND = "by-hand"  # the suffix of the run folder a notebook run by hand writes into

__all__ = ["CHECKOUT", "NOTEBOOKS", "RUNS", "site_file_path", "output_folder", "cache_dir", "kubeconfig_file"]


def cache_dir() -> Path:
    """tkgs-runbook's cache (the built simulator, the apply locks): $TKGS_CACHE_DIR or ~/.cache/tkgs-runbook."""
    return Path(os.environ.get("TKGS_CACHE_DIR") or Path.home() / ".cache" / "tkgs-runbook")


def kubeconfig_file(site: str, namespace: str, cluster: str) -> Path:
    """Where the cluster stage keeps a site's kubeconfig: it holds credentials, so never in a run folder (handed
    to colleagues): $TKGS_KUBECONFIG_DIR, else ~/.kube/tkgs-runbook, ``<site>-<namespace>-<cluster>.kubeconfig``."""
    folder = Path(os.environ.get("TKGS_KUBECONFIG_DIR") or Path.home() / ".kube" / "tkgs-runbook")
    return folder / f"{site}-{namespace}-{cluster}.kubeconfig"


def site_file_path(site_file: str | Path) -> Path:
    """``site_file`` as an absolute path: as given when absolute; a relative one from the working
    folder, else from the checkout. A SiteError names every place looked in."""
    path = Path(site_file).expanduser()
    if path.is_absolute():
        return path
    places = list(dict.fromkeys([Path.cwd(), CHECKOUT]))
    for place in places:
        if (place / path).exists():
            return (place / path).absolute()
    looked = " or ".join(str(place / path) for place in places)
    raise SiteError(f"{site_file}: no such site file (a relative site_file is looked for in the working folder, "
                    f"then in the tkgs-runbook checkout: {looked}).")


def output_folder(output_dir: str | Path, name: str) -> Path:
    """Where a stage writes its files: ``output_dir`` when one is given (the runner gives each run's
    folder); empty, a run folder for work by hand, ``runs/<name>-by-hand`` in the checkout, shared by
    the notebooks a person steps through so each finds what the one before it wrote. ``name``: the
    site's, when it is a plain name (the caller checks)."""
    if str(output_dir).strip():
        folder = Path(output_dir).expanduser().absolute()
    else:
        folder = RUNS / f"{name}-{BY_HAND}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder

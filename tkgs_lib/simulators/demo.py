"""A site for the bundled vCenter simulator: the example site pointed at the simulator's inventory."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import yaml

from ..paths import CHECKOUT

EXAMPLE_SITE = CHECKOUT / "examples" / "example-site.yaml"

# The simulator's default VPX inventory (see vcsim.py): what a demo site names.
SIMULATOR_INVENTORY = {"datacenter": "DC0", "cluster": "DC0_C0", "distributed_switch": "DVS0",
                       "datastores": ["LocalDS_0"]}


def simulator_site_data(sim, base: Optional[dict] = None, ova: Optional[Path] = None) -> dict:
    """``base`` (default: the example site) with its vcenter block aimed at ``sim``, verified by its CA."""
    data = base if base is not None else yaml.safe_load(EXAMPLE_SITE.read_text())
    data["vcenter"].update({"server": sim.host, "port": sim.port, "username": sim.username,
                            "ca_file": str(sim.ca_file) if sim.ca_file else None, "thumbprint": None, **SIMULATOR_INVENTORY})
    if ova is not None:
        data["content_libraries"]["haproxy"]["ova"] = str(ova)
    return data


# The stages the main job runs: every stage that works against the vCenter simulator alone.
DEMO_STAGES = ("plan", "prepare", "deploy")


def run_demo(output: Path, *, stages=DEMO_STAGES, disk_size: int = 2 * 1024 * 1024) -> Path:
    """Start the bundled simulator (and the appliance's simulated first boot), write a demo site and a
    small generated OVA, run the stages with apply.

    Returns the run folder, which keeps the demo site it ran (the simulator, its CA file and the
    OVA lived only for the run). The passwords (the simulator's, and fresh ones for the appliance)
    reach the notebooks only through the environment variables the site names, never as a
    parameter or in the site file."""
    import os
    import secrets
    import sys
    import tempfile

    from ..credentials import secret_env_fields
    from ..runbook import new_run_folder, run_stages
    from ..site import load_site, parse_site
    from ..stages import select_stages
    from .first_boot import FirstBoot
    from .ova import build_ova
    from .vcsim import VCenterSimulator

    output = Path(output)
    with tempfile.TemporaryDirectory(prefix="tkgs-demo-") as work, VCenterSimulator() as sim, FirstBoot(sim):
        ova = build_ova(Path(work) / "haproxy-v0.1.10.ova", disk_size=disk_size)
        data = simulator_site_data(sim, ova=ova)
        data["site"] = "demo"
        data["haproxy"]["boot_timeout"] = 60  # the simulated first boot takes a second or two
        text = ("# The example site aimed at the bundled vCenter simulator (tkgs-runbook demo). The simulator,\n"
                "# its CA file and the generated OVA existed only during this run.\n"
                + yaml.safe_dump(data, sort_keys=False))
        folder = new_run_folder(parse_site(text), output)
        (folder / "demo-site.yaml").write_text(text)
        site = load_site(folder / "demo-site.yaml")
        passwords = {name: secrets.token_urlsafe(16) for _, name in secret_env_fields(site)}
        passwords[site.vcenter.password_env] = sim.password
        os.environ.update(passwords)
        try:
            run_stages(site, select_stages(stages), folder, apply=True, progress=sys.stderr.isatty())
        finally:
            for name in passwords:
                os.environ.pop(name, None)
    return folder

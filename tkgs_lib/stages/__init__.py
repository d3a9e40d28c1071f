"""The runbook's stages, and the one shape each of them has.

A stage is one module of this package, named after it, with:

    STAGE               its entry in :data:`STAGES`: name, notebook, title, the parameters its
                        notebook takes, and what it changes when applied
    read_facts(run)     what exists now, as plain values (vCenter's objects, the appliance's files)
    plan(run, facts)    a :class:`~tkgs_lib.planning.Plan`: one row per object (ok, create,
                        change or conflict, each with its reason) plus findings; no I/O of its own
    reports(run, facts) titled tables of what the stage finds

``run`` is a :class:`~tkgs_lib.stages.flow.StageRun`: the site, the network plan every stage reads
(``network_layout(site)``, never the raw site's roles), the run folder and the connections. Its
``carry_out`` is the one protocol every stage notebook follows: save the plan as shown, check it,
apply exactly that plan only when asked, read again, save what is there after, insist the rerun
plan is all ok. Adding a stage is writing its facts, planner and notebook, and an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from ..errors import TkgsError
from .provided import (ApplianceCa, ApplianceRelease, ApplianceVm, ClusterState, DataplaneAddress, KubeconfigFile,
                       NamespaceState, PreparedIds, ReissuedCertificate, RemovedObjects, ServiceAddress, SupervisorState,
                       VCenterObjects)

__all__ = ["Stage", "StageCall", "STAGES", "STAGE_NAMES", "stage_named", "select_stages"]


@dataclass(frozen=True)
class Stage:
    name: str  # as on the command line: --stages networks prepare
    notebook: str  # in notebooks/
    title: str
    parameters: tuple[str, ...]  # every one is declared in the notebook's parameters cell
    changes: str = ""  # what it changes when applied ("" for a stage that only reads)
    secrets: tuple[str, ...] = ()  # the site fields naming the secrets it may read (credentials.SECRETS)
    needs: tuple[type, ...] = ()  # values (stages.provided) it cannot do without: provided, or stood in for
    takes: tuple[type, ...] = ()  # values it uses when provided, and otherwise finds for itself
    provides: tuple[type, ...] = ()  # the values it provides for the stages after it
    module_name: str = ""  # where its read_facts, plan and reports live ("": tkgs_lib.stages.<name>)
    checks_file: str = ""  # the table of checks it saves in the run folder (CSV), shown on the run's index
    checks_title: str = ""  # that table's heading there
    on_request: bool = False  # runs only when named (--stages destroy, rotate): never part of all the stages

    @property
    def module(self) -> str:
        return self.module_name or f"{__name__}.{self.name}"


@dataclass(frozen=True)
class StageCall:
    """A stage as a run calls it: under a name of its own when the run calls it twice (its entry in
    stages.json and its notebook's file), and the failure of a cell after which the run goes on (the
    demo's first verify, which finds the fault the demo put there)."""

    stage: Stage
    name: str = ""  # "": the stage's own
    goes_on_after: str = ""  # the class name of the exception a failed cell raised, e.g. VerificationFailed

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.stage.name)

    @property
    def notebook(self) -> str:
        """The executed notebook's file name in the run folder."""
        if self.name == self.stage.name:
            return self.stage.notebook
        return self.stage.notebook.replace(".ipynb", f"_{self.name.removeprefix(self.stage.name + '-')}.ipynb")


_VCENTER, _ROOT, _DATAPLANE = "vcenter.password_env", "haproxy.root_password_env", "haproxy.dataplane_password_env"
_NEW_ROOT, _NEW_DATAPLANE = "rotate.root_password_env", "rotate.dataplane_password_env"
STAGES: tuple[Stage, ...] = (
    Stage("networks", "01_plan_networks.ipynb", "Plan the networks", ("site_file", "output_dir")),
    Stage("prepare", "02_prepare_vsphere.ipynb", "Prepare vSphere", ("site_file", "output_dir", "apply"),
          changes="vSphere", secrets=(_VCENTER,), provides=(PreparedIds, VCenterObjects)),
    Stage("deploy", "03_deploy_haproxy.ipynb", "Deploy the HAProxy appliance", ("site_file", "output_dir", "apply"),
          changes="vSphere", secrets=(_VCENTER, _ROOT, _DATAPLANE), takes=(PreparedIds,),
          provides=(ApplianceRelease, ApplianceCa, DataplaneAddress, ApplianceVm, VCenterObjects)),
    # verify reads vCenter only for the appliance's CA when the run folder holds none
    Stage("verify", "04_verify_haproxy.ipynb", "Verify the HAProxy appliance", ("site_file", "output_dir"),
          secrets=(_VCENTER, _ROOT, _DATAPLANE), takes=(ApplianceCa, ApplianceRelease, DataplaneAddress),
          checks_file="verify-checks.csv", checks_title="The appliance, checked last"),
    Stage("repair", "05_repair_haproxy.ipynb", "Repair the HAProxy appliance", ("site_file", "output_dir", "apply"),
          changes="the appliance", secrets=(_ROOT,), takes=(ApplianceRelease,)),
    # what the appliance's own first boot leaves readable (the log, vCenter's copies, root's password login)
    Stage("harden", "05b_harden_haproxy.ipynb", "Harden the HAProxy appliance", ("site_file", "output_dir", "apply"),
          changes="the appliance and its VM in vCenter", secrets=(_VCENTER, _ROOT, _DATAPLANE),
          takes=(ApplianceCa,), checks_file="harden-checks.csv",
          checks_title="What the appliance's first boot left readable, checked"),
    Stage("enable", "06_enable_workload_management.ipynb", "Enable Workload Management",
          ("site_file", "output_dir", "apply"), changes="Workload Management", secrets=(_VCENTER, _ROOT, _DATAPLANE),
          takes=(PreparedIds, ApplianceCa, DataplaneAddress), provides=(SupervisorState, VCenterObjects),
          checks_file="supervisor-checks.csv", checks_title="The Supervisor, through the load balancer"),
    Stage("namespace", "07_create_namespace.ipynb", "Create the vSphere Namespace",
          ("site_file", "output_dir", "apply"),
          changes="vSphere Namespaces", secrets=(_VCENTER,), takes=(PreparedIds,),
          provides=(NamespaceState, VCenterObjects),
          checks_file="namespace-checks.csv", checks_title="The namespace, as vCenter reports it"),
    Stage("cluster", "08_tanzu_cluster.ipynb", "Create the Tanzu Kubernetes cluster and prove a LoadBalancer Service",
          ("site_file", "output_dir", "apply"), changes="the Tanzu Kubernetes cluster", secrets=(_VCENTER, _ROOT),
          takes=(SupervisorState,), provides=(ClusterState, KubeconfigFile, ServiceAddress, VCenterObjects),
          checks_file="cluster-checks.csv",
          checks_title="The cluster and its LoadBalancer Service, through the appliance"),
    # Day-2 stages: each runs only when named (--stages rotate), never in a run of every stage.
    Stage("rotate", "10_rotate_secrets.ipynb", "Rotate the appliance's secrets", ("site_file", "output_dir", "apply"),
          changes="the appliance and the Supervisor's load balancer",
          secrets=(_VCENTER, _ROOT, _DATAPLANE, _NEW_ROOT, _NEW_DATAPLANE), takes=(ApplianceCa, DataplaneAddress),
          provides=(ReissuedCertificate,), on_request=True),
    Stage("upgrade", "11_upgrade_haproxy.ipynb", "Upgrade the HAProxy appliance to a later release",
          ("site_file", "output_dir", "apply"), changes="the appliance's VM", secrets=(_VCENTER, _ROOT, _DATAPLANE),
          takes=(PreparedIds, ApplianceCa, ApplianceRelease, DataplaneAddress),
          provides=(ApplianceRelease, ApplianceVm, VCenterObjects),
          checks_file="upgrade-checks.csv", checks_title="The new appliance, checked before the old one is let go",
          on_request=True),
    # what the run made in vCenter, removed in reverse: only when named, after whatever else ran
    Stage("destroy", "12_destroy_run.ipynb", "Remove what the run made", ("site_file", "output_dir", "apply"),
          changes="vSphere", secrets=(_VCENTER,), needs=(VCenterObjects,), provides=(RemovedObjects,),
          on_request=True),
)


def _extra_stages(builtin: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """Stages of one's own, from ``TKGS_EXTRA_STAGES``: importable modules, comma-separated, each holding a
    STAGE (its read_facts, plan and reports beside it) whose notebook is in the notebooks folder; they join
    the registry after the runbook's own. Every process of a run (the runner, its kernels, a fleet's
    sites) reads the same environment, so each sees the same stages."""
    import importlib
    import os
    from dataclasses import replace

    extra: list[Stage] = []
    for name in (n.strip() for n in os.environ.get("TKGS_EXTRA_STAGES", "").split(",")):
        if not name:
            continue
        try:
            stage = getattr(importlib.import_module(name), "STAGE", None)
        except ImportError as exc:
            raise TkgsError(f"TKGS_EXTRA_STAGES names the module {name!r}, which cannot be imported ({exc}).") from None
        if not isinstance(stage, Stage):
            raise TkgsError(f"the module {name!r} (TKGS_EXTRA_STAGES) holds no STAGE: define STAGE = Stage(...) in it.")
        if stage.name in {s.name for s in (*builtin, *extra)}:
            raise TkgsError(f"the module {name!r} (TKGS_EXTRA_STAGES) names its stage {stage.name!r}, which is "
                            f"taken: give it a name of its own.")
        extra.append(replace(stage, module_name=stage.module_name or name))
    return tuple(extra)


STAGES = STAGES + _extra_stages(STAGES)
STAGE_NAMES = tuple(s.name for s in STAGES)


def stage_named(name: str) -> Stage:
    for stage in STAGES:
        if stage.name == name:
            return stage
    raise TkgsError(f"unknown stage {name}; the stages are: {', '.join(STAGE_NAMES)}.")


def select_stages(names: Optional[Iterable[str]]) -> list[Stage]:
    """The stages asked for, in runbook order; when none are named, all of them but those that run only on
    request (the day-2 ones: rotate, destroy)."""
    if not names:
        return [s for s in STAGES if not s.on_request]
    wanted = [n.strip() for name in names for n in name.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in STAGE_NAMES]
    if unknown or not wanted:
        named = f"unknown stage {', '.join(unknown)}" if unknown else "no stage named"
        renamed = " (the first stage, which checks the networks at the desk, is called networks)" \
            if "plan" in unknown else ""
        raise TkgsError(f"{named}; the stages are: {', '.join(STAGE_NAMES)}{renamed}.")
    return [s for s in STAGES if s.name in wanted]

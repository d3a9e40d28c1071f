"""The runbook's stages as an Apache Airflow DAG, for fleets whose vCenters only nearby workers reach.

``pip install 'tkgs-runbook[airflow]'``, then in a file of Airflow's dags folder::

    from .airflow import fleet_dag
    dag = fleet_dag("/srv/tkgs/fleet.yaml")

From a fleet file (:mod:`tkgs_lib.fleet.file`) the DAG has one task group per site and in it one
task per stage, in runbook order, each on its site's queue (the workers that can reach its vCenter).
A task runs the very command a person runs for one stage, ``tkgs-runbook run SITE --stages STAGE
--run-folder <shared>/<dag>/<run>/<site>``, in a child process: the same scrubbing, secret scan,
apply lock, record and exit status, and each stage continues the run folder the one before it
wrote. A last task writes the fleet's index.html in the DAG run's folder, whatever the sites did.
A site file that cannot be read (or whose site name cannot name a group) stops only its own site, as
``run`` skips only that site: its group is named after the file and each of its tasks fails saying
why, without retries.

Passwords reach the runner only through its environment: from the Airflow connection the fleet
file names for a variable (read when the task runs, only for the secrets its stage may read, never
templated, and masked in the task's log), else from the worker's own environment. None is a DAG
parameter, an XCom or a rendered field. A connection that does not exist fails that task in one
sentence, entered in the site's record, since retrying cannot make it exist.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Optional

from ..errors import TkgsError

try:
    import pendulum
    from airflow.sdk import DAG, BaseHook, BaseOperator, TaskGroup
    from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowNotFoundException
except ImportError as exc:  # the extra is not installed
    raise TkgsError(f"the Airflow DAG needs Apache Airflow 3 ({exc}): pip install 'tkgs-runbook[airflow]'.") from None

__all__ = ["fleet_dag", "SiteStageOperator", "FleetIndexOperator", "run_folder_template"]

EXIT_UNREADABLE, EXIT_INTERRUPTED = 2, 130
STOP_SECONDS = 120  # how long a stopped stage may take to keep its record


def run_folder_template(root: Path, dag_id: str) -> str:
    """The DAG run's folder on shared storage, as a template: one folder per DAG run, named by its
    run id with the characters a path should not hold replaced."""
    return f"{root}/{dag_id}/" + "{{ run_id | replace(':', '-') | replace('+', '_') }}"


class SiteStageOperator(BaseOperator):
    """One stage of one site: ``tkgs-runbook run`` into the site's run folder on shared storage."""

    template_fields = ("run_folder",)  # the path only: nothing secret is ever templated
    ui_color = "#e8f0fe"

    def __init__(self, *, site: str, site_file: str, stage: str, run_folder: str, apply: bool = False,
                 passwords: Optional[dict] = None, secret_variables: tuple = (), problem: str = "",
                 **kwargs) -> None:
        kwargs.setdefault("do_xcom_push", False)
        super().__init__(**kwargs)
        self.site, self.site_file, self.stage, self.run_folder, self.apply = site, site_file, stage, run_folder, apply
        self.passwords = dict(passwords or {})  # variable -> connection id, for the secrets this stage may read
        self.secret_variables = tuple(secret_variables)
        self.problem = problem  # why the site cannot run at all (its file cannot be read): the task fails saying so
        self._process: Optional[subprocess.Popen] = None

    def _environment(self) -> dict:
        from airflow.sdk.log import mask_secret

        # The runner needs none of Airflow's own secrets.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
        for variable, conn_id in self.passwords.items():
            try:
                password = BaseHook.get_connection(conn_id).password
            except AirflowNotFoundException:
                raise self._not_started(
                    f"the Airflow connection {conn_id!r}, which the fleet file names for {variable}, does not exist, "
                    f"and stage {self.stage} reads that password: define it (in a secrets backend, or as "
                    f"AIRFLOW_CONN_<ID> in the workers' environment), or drop it from the site's passwords in the "
                    f"fleet file to read {variable} from the worker's environment.") from None
            if not password:
                raise self._not_started(f"the Airflow connection {conn_id!r} holds no password for {variable}, which "
                                        f"stage {self.stage} reads; set the connection's password.")
            env[variable] = password
        for variable in self.secret_variables:
            if env.get(variable):
                mask_secret(env[variable], variable)  # should anything ever print it, the log shows ***
        return env

    def _not_started(self, sentence: str) -> AirflowFailException:
        """The failure of a stage whose runner cannot be started (retrying cannot help), entered in the site's
        record as the runner would have, so the fleet index says where and why the site stopped."""
        from ..runner.stage_list import record_not_started
        from ..stages import stage_named

        try:
            record_not_started(Path(self.run_folder), self.site, self.site_file, stage_named(self.stage), sentence,
                               apply=self.apply)
        except (OSError, TkgsError) as exc:
            self.log.warning("the site's record %s cannot say so: %s", self.run_folder, exc)
        return AirflowFailException(sentence)

    def execute(self, context) -> None:
        if self.problem:
            raise AirflowFailException(self.problem)  # retrying cannot help: the site file must be fixed
        argv = [sys.executable, "-m", "tkgs_lib.cli", "run", self.site_file, "--stages", self.stage,
                "--run-folder", self.run_folder]
        if self.apply:
            argv.append("--apply")
        self.log.info("running: %s", " ".join(argv[2:]))
        self._process = subprocess.Popen(argv, env=self._environment(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in self._process.stdout:
            self.log.info("%s", line.rstrip())
        status = self._process.wait()
        record = f"{self.run_folder}/index.html"
        if status == EXIT_UNREADABLE:  # retrying cannot help: the site file must be fixed
            raise AirflowFailException(f"the site file {self.site_file} cannot be read; see the log above.")
        if status == EXIT_INTERRUPTED:
            raise AirflowException(f"stage {self.stage} was interrupted; its record is kept: {record}.")
        if status != 0:
            raise AirflowException(f"stage {self.stage} failed (exit status {status}); see the log above and {record}.")

    def on_kill(self) -> None:
        """Airflow stops the task: stop the runner as SIGTERM stops a run, so it keeps its record."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()


class FleetIndexOperator(BaseOperator):
    """The DAG run's fleet index.html and fleet.json, from each site's own record on shared storage."""

    template_fields = ("run_folder",)

    def __init__(self, *, run_folder: str, sites: list, stages: list, **kwargs) -> None:
        kwargs.setdefault("do_xcom_push", False)
        super().__init__(**kwargs)
        self.run_folder, self.sites, self.stages = run_folder, [tuple(s) for s in sites], list(stages)

    def execute(self, context) -> None:
        from . import FleetSite, write_fleet_summary

        folder = Path(self.run_folder)
        folder.mkdir(parents=True, exist_ok=True)
        sites = [FleetSite(site_file, name=name, problem=problem, folder=None if problem else folder / name,
                           started=not problem and (folder / name).is_dir())
                 for name, site_file, problem in self.sites]
        index = write_fleet_summary(folder, sites, self.stages)
        self.log.info("fleet index: %s", index)


def fleet_dag(fleet_file: str | Path, *, dag_id: Optional[str] = None, apply: Optional[bool] = None,
              **dag_kwargs) -> DAG:
    """The DAG of a fleet file: a task group per site (its stages in order, on its queue and pool), then
    the fleet index. ``apply`` overrides the file's; ``dag_kwargs`` go to the DAG (schedule, tags...)."""
    from .file import load_fleet
    from ..stages import stage_named

    fleet = load_fleet(fleet_file)
    dag_id = dag_id or fleet.name
    apply = fleet.apply if apply is None else apply
    run_folder = run_folder_template(fleet.run_folder, dag_id)
    dag_kwargs.setdefault("schedule", None)
    dag_kwargs.setdefault("start_date", pendulum.datetime(2024, 1, 1, tz="UTC"))
    dag_kwargs.setdefault("catchup", False)
    dag_kwargs.setdefault("max_active_runs", 1)  # two runs of one fleet would apply side by side
    dag_kwargs.setdefault("tags", ["tkgs-runbook"])
    unreadable = sum(1 for e in fleet.sites if e.problem)
    cannot_run = f" ({unreadable} of them cannot run; their tasks say why)" if unreadable else ""
    dag_kwargs.setdefault("doc_md", f"tkgs-runbook fleet `{fleet.source}`: stages {', '.join(fleet.stages)} of "
                                    f"{len(fleet.sites)} sites{' with apply' if apply else ', plan only'}{cannot_run}; "
                                    f"records in `{fleet.run_folder}/{dag_id}/<run>/`.")
    with DAG(dag_id, **dag_kwargs) as dag:
        groups = []
        for entry in fleet.sites:
            with TaskGroup(group_id=entry.name, tooltip=str(entry.site_file)) as group:
                previous = None
                for name in fleet.stages:
                    stage = stage_named(name)
                    extra = {"pool": entry.pool} if entry.pool else {}
                    task = SiteStageOperator(task_id=name, site=entry.name, site_file=str(entry.site_file),
                                             stage=name, run_folder=f"{run_folder}/{entry.name}",
                                             apply=apply and bool(stage.changes), passwords=entry.passwords_for(stage),
                                             secret_variables=entry.secret_variables, problem=entry.problem,
                                             queue=entry.queue, **extra)
                    if previous is not None and not entry.problem:  # a site that cannot run: each task says why
                        previous >> task
                    previous = task
            groups.append(group)
        index = FleetIndexOperator(task_id="fleet_index", run_folder=run_folder, trigger_rule="all_done",
                                   sites=[(e.name, str(e.site_file), e.problem) for e in fleet.sites],
                                   stages=list(fleet.stages))
        groups >> index
    return dag

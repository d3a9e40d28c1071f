"""`tkgs-runbook validate` and `run` through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import EXAMPLE_SITE, SHADOW, SHADOW_PARTS, variant
from long_step import at_long_step, notebooks_with_a_long_plan

SCRIPT = Path(sys.executable).with_name("tkgs-runbook")
CANARY = "canary-Pa55w0rd-never-shown"


def cli(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    assert SCRIPT.exists(), f"the console script is not installed next to {sys.executable}"
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=cwd)


def write_site(tmp_path: Path, changes=None, remove=(), name="site.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(variant(changes, remove), sort_keys=False))
    return path


def test_validate_the_article_site_exits_0_with_its_one_warning():
    result = cli("validate", EXAMPLE_SITE)
    assert result.returncode == 0, result.stderr
    assert "0 errors, 1 warning." in result.stdout
    assert "Subnet summary" in result.stdout and "10.64.1.0/24" in result.stdout


def test_validate_exits_1_on_an_error_and_names_the_field(tmp_path):
    result = cli("validate", write_site(tmp_path, {"haproxy.load_balancer_ranges": ["10.64.0.1/23"]}))
    assert result.returncode == 1
    assert "ERROR haproxy.load_balancer_ranges[0]" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("changes, path", [
    ({"networks.frontend.gatway": "10.64.0.1"}, "networks.frontend.gatway"),
    ({"vcenter.password": "hunter2"}, "vcenter.password"),
])
def test_unknown_and_secret_keys_exit_1(tmp_path, changes, path):
    result = cli("validate", write_site(tmp_path, changes), "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert path in [f["path"] for f in report["findings"] if f["severity"] == "error"]
    assert "hunter2" not in result.stdout


def test_json_format_lists_findings():
    result = cli("validate", EXAMPLE_SITE, "--format", "json")
    report = json.loads(result.stdout)
    assert report["errors"] == 0
    assert [(f["severity"], f["path"]) for f in report["findings"]] == [("warning", "haproxy.load_balancer_ranges[0]")]


@pytest.mark.parametrize("content, words", [
    (None, "no such site file"),
    ("networks: [", "is not valid YAML"),
    ("just a string", "must be a YAML mapping"),
])
def test_validate_exits_2_when_the_file_cannot_be_read_as_a_mapping(tmp_path, content, words):
    path = tmp_path / "site.yaml"
    if content is not None:
        path.write_text(content)
    result = cli("validate", path)
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr


def test_run_plan_writes_an_executed_notebook_and_html_without_secrets(tmp_path):
    site = write_site(tmp_path)
    result = cli("run", site, "--stages", "networks", "--output", tmp_path / "runs",
                 env={"TKGS_VCENTER_PASSWORD": CANARY, "TKGS_HAPROXY_ROOT_PASSWORD": CANARY})
    assert result.returncode == 0, result.stderr
    assert "without encryption" not in result.stderr  # the kernel talks over private Unix sockets, not TCP
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("lab01-")
    names = {p.name for p in folder.iterdir()}
    assert {"01_plan_networks.ipynb", "01_plan_networks.html", "address-space.png", "anyip-routes.cfg"} <= names
    executed = json.loads((folder / "01_plan_networks.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert str(site) in "".join(injected[0]["source"])
    for path in folder.iterdir():
        assert CANARY.encode() not in path.read_bytes(), f"a secret reached {path.name}"
    assert (folder / "anyip-routes.cfg").read_text().endswith("10.64.1.0/24\n")


def test_run_stops_at_the_failing_stage_and_names_it(tmp_path):
    site = write_site(tmp_path, {"networks.workload.gateway": "10.64.16.1"})
    result = cli("run", site, "--output", tmp_path / "runs")
    assert result.returncode == 1
    assert "stage 'networks' (Plan the networks) failed" in result.stderr
    assert "networks.workload.gateway" in result.stderr
    # The kernel's own log (e.g. "[IPKernelApp] ERROR | ...") is not the person's to read.
    assert "IPKernelApp" not in result.stderr and "Traceback" not in result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "01_plan_networks.html").exists()  # the failed notebook is kept as the record


def test_run_refuses_an_unknown_stage(tmp_path):
    result = cli("run", EXAMPLE_SITE, "--stages", "deploy-everything", "--output", tmp_path)
    assert result.returncode == 1
    assert "unknown stage deploy-everything; the stages are: networks, prepare" in result.stderr


def _notebook_with(text: str, html_text: str):
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print('hello')")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text),
                    nbformat.v4.new_output("display_data", data={"text/html": html_text, "text/plain": text})]
    nb.cells = [cell]
    return nb


def test_scrub_secrets_removes_raw_and_html_escaped_values(tmp_path):
    import html

    import nbformat

    from tkgs_lib.credentials import scrub_notebook
    from tkgs_lib.runner.notebooks import write_html

    secret = 'p"a<s>&s\\w'
    path = tmp_path / "x.ipynb"
    nbformat.write(_notebook_with(f"before {secret} after", f"<td>{html.escape(secret)}</td>"), str(path))
    scrub_notebook(path, [secret])
    text = path.read_text()
    assert "********" in text and "p\\\"a<s>" not in text and html.escape(secret) not in text
    nbformat.validate(nbformat.read(str(path), as_version=4))
    assert secret not in write_html(path).read_text()


def test_the_exporter_is_warmed_once_while_a_kernel_runs_and_the_export_waits_for_it(tmp_path, monkeypatch):
    """The warm-up (a thread, once per process) leaves the real export unchanged, and an export started
    while it is under way waits for it instead of racing it."""
    import threading

    import nbformat

    from tkgs_lib.runner import notebooks as runbook

    path = tmp_path / "x.ipynb"
    nbformat.write(_notebook_with("text", "<p>x</p>"), str(path))
    cold = runbook.write_html(path).read_text()
    monkeypatch.setattr(runbook, "_warming_started", False)
    monkeypatch.setattr(runbook, "_exporter_warm", threading.Event())
    runbook.warm_html_exporter()
    runbook.warm_html_exporter()  # a second stage: no second warm-up
    warming = [t for t in threading.enumerate() if t.name == "tkgs-html-warm-up"]
    assert len(warming) <= 1
    assert runbook.write_html(path).read_text() == cold
    assert runbook._exporter_warm.is_set()  # the export waited for the warm-up to end


@pytest.mark.parametrize("secret", ["1", "cells", "source", "metadata"])
def test_scrubbing_a_secret_that_looks_like_structure_leaves_a_valid_notebook(tmp_path, secret):
    import nbformat

    from tkgs_lib.credentials import scrub_notebook
    from tkgs_lib.runner.notebooks import write_html

    path = tmp_path / "x.ipynb"
    nbformat.write(_notebook_with(f"a {secret} b", "<p>x</p>"), str(path))
    scrub_notebook(path, [secret])
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].outputs[0].text == "a ******** b"
    write_html(path)


@pytest.mark.parametrize("stages", [",", " "])
def test_run_refuses_an_empty_stage_list(tmp_path, stages):
    result = cli("run", EXAMPLE_SITE, "--stages", stages, "--output", tmp_path)
    assert result.returncode == 1 and "no stage named; the stages are: networks, prepare" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_into_an_output_that_is_a_file_is_one_sentence(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    result = cli("run", EXAMPLE_SITE, "--output", blocker)
    assert result.returncode == 1
    assert "cannot create the run folder" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/absolute"])
def test_a_site_name_that_is_a_path_never_makes_a_folder_outside_output(tmp_path, name):
    site = write_site(tmp_path, {"site": name})
    result = cli("run", site, "--stages", "networks", "--output", tmp_path / "runs")
    assert result.returncode == 1 and "cannot name a run folder" in result.stderr
    assert not (tmp_path / "runs").exists()
    assert not any(p.name.startswith(("escaped-", "absolute-")) for p in (tmp_path, tmp_path.parent, Path("/tmp"))
                   for p in p.iterdir())


def test_every_form_of_a_secret_is_scrubbed(tmp_path):
    import html

    import nbformat

    from tkgs_lib.credentials import scrub_notebook, scrub_text

    secret = "Pa<ss'w\\rd"
    shown = [secret, repr(secret), html.escape(secret, quote=False), html.escape(secret)]
    path = tmp_path / "x.ipynb"
    nbformat.write(_notebook_with(" | ".join(shown), f"<td>{html.escape(secret, quote=False)}</td>"), str(path))
    scrub_notebook(path, [secret])
    text = path.read_text()
    assert "Pa<ss" not in text and "Pa&lt;ss" not in text and "Pa\\\\u003css" not in text
    assert scrub_text(f"StageFailed: login {secret!r} refused", [secret]) == 'StageFailed: login "********" refused'


@pytest.mark.parametrize("relative", [True, False], ids=["relative paths", "absolute paths"])
def test_run_takes_relative_paths_from_the_callers_working_folder(tmp_path, relative):
    """The kernels start in notebooks/: a relative --output once reached them as it was written."""
    (tmp_path / "sites").mkdir()
    site = write_site(tmp_path / "sites")
    args = (["sites/site.yaml", "--output", "runs"] if relative else [site, "--output", tmp_path / "runs"])
    result = cli("run", *args, "--stages", "networks", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "anyip-routes.cfg").read_text().endswith("10.64.1.0/24\n")
    assert f"run folder: {folder}" in result.stdout  # absolute, as the notebooks were given it


def test_run_works_under_a_home_folder_with_a_long_path(tmp_path):
    """Kernel sockets under a long home folder once passed the 107 bytes of a Unix socket path, and
    the run hung for ever waiting on a kernel that could not start."""
    home = tmp_path / ("h" * 100)
    home.mkdir()
    result = cli("run", write_site(tmp_path), "--stages", "networks", "--output", tmp_path / "runs",
                 env={"HOME": str(home)})
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("changes", [{}, {"haproxy.load_balancer_ranges": ["10.64.0.1/23"],
                                          "networks.workload.gateway": "10.64.16.1"}], ids=["article", "errors"])
def test_validate_fits_a_100_column_terminal(tmp_path, changes):
    write_site(tmp_path, changes)
    result = cli("validate", "site.yaml", cwd=tmp_path)  # a path as a person types it
    assert result.stdout.count("\n") > 20
    assert [line for line in result.stdout.splitlines() if len(line) > 100] == []


def test_validate_refuses_the_empty_strings_a_new_user_wrote_naming_each_field_and_what_to_write(tmp_path):
    result = cli("validate", write_site(tmp_path, {"vcenter.password_env": "", "vcenter.datastores": "",
                                                   "vcenter.ca_file": ""}))
    assert result.returncode == 1
    text = " ".join(result.stdout.split())
    assert ("ERROR vcenter.password_env: is empty, which is neither a value nor the default. Fix: remove the key to "
            "use the variable TKGS_VCENTER_PASSWORD, or name the environment variable that holds the secret.") in text
    assert "ERROR vcenter.datastores: is required but empty. Fix: add `datastores:`" in text
    assert "e.g. [vsanDatastore]" in text
    assert ("ERROR vcenter.ca_file: is empty, which is neither a value nor the default. Fix: remove the key (or "
            "write null) for the default, or write the value: PEM bundle") in text


def test_validate_never_calls_a_rejected_anyip_line_what_the_appliance_will_write(tmp_path):
    result = cli("validate", write_site(tmp_path, {"haproxy.load_balancer_ranges": ["10.64.0.1/23"]}))
    assert "as the appliance will write" not in result.stdout
    assert "anyip-routes.cfg NOT written" in result.stdout and "10.64.0.1/23    <- rejected" in result.stdout


def test_a_site_value_holding_a_password_is_refused_before_anything_runs(tmp_path):
    """A password that is also a site value (here the load-balancer range) would reach anyip-routes.cfg
    and every plan table: refused up front, naming the field, never the value."""
    site = write_site(tmp_path)
    result = cli("run", site, "--stages", "networks", "--output", tmp_path / "runs",
                 env={"TKGS_VCENTER_PASSWORD": "10.64.1.0/24"})
    assert result.returncode == 1
    assert "the site field(s) haproxy.load_balancer_ranges[0] contain the value of a password" in result.stderr
    assert "10.64.1.0/24" not in result.stderr
    assert not list((tmp_path / "runs").glob("*/*.ipynb"))  # nothing ran


def test_only_the_runs_logs_are_masked_and_the_whole_folder_is_scanned(tmp_path):
    """A file the run reads again (a table a later stage reads, the site, known_hosts) is never rewritten:
    a secret in it is a leak the scan names. Only the run's logs are masked."""
    from tkgs_lib.credentials import scan_for_secrets, scrub_text_files

    table = "object,found\nport group s3cr3t-value,missing\n"
    (tmp_path / "prepare-plan.csv").write_text(table)
    (tmp_path / "kernel.log").write_text("login with s3cr3t-value failed\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\xff" + __import__("base64").b64encode(b"xx s3cr3t-value yy"))
    assert scrub_text_files(tmp_path, ["s3cr3t-value"]) == [tmp_path / "kernel.log"]
    assert (tmp_path / "prepare-plan.csv").read_text() == table  # untouched
    assert "********" in (tmp_path / "kernel.log").read_text()
    assert scan_for_secrets(tmp_path, ["s3cr3t-value"]) == [("blob.bin", "encoded"), ("prepare-plan.csv", "plain")]


@pytest.mark.parametrize("password, words", [
    ("x", "is 1 characters long"), ("ok", "is 2 characters long"), ("dem", "is 3 characters long"),
    ("emo", "is 3 characters long"), ("plan", "is 4 characters long"),
    ("networks", "is a string that the site file"),  # a word the site and the notebooks hold
    ("parameters", "is a string that the notebook 01_plan_networks.ipynb"),  # the notebooks' own tag
    ("line\nbreak-here", "holds a line break at character 5"),
])
def test_a_password_a_run_cannot_keep_out_of_its_records_is_refused_before_anything_runs(tmp_path, password, words):
    site = write_site(tmp_path)
    before = site.read_text()
    result = cli("run", site, "--stages", "networks", "--output", tmp_path / "runs", env={"TKGS_VCENTER_PASSWORD": password})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "$TKGS_VCENTER_PASSWORD (vcenter.password_env)" in line and words in line, line
    assert f"'{password}'" not in line and f" {password} " not in line and f"{password!r}" not in line  # never shown
    assert not list((tmp_path / "runs").glob("*/*.ipynb")) and site.read_text() == before  # nothing ran or changed


def test_validate_caps_the_findings_of_one_kind(tmp_path):
    ranges = [f"10.64.8.{50 + i}-10.64.8.{60 + i}" for i in range(150)]
    result = cli("validate", write_site(tmp_path, {"networks.workload.ranges": ranges}))
    assert result.returncode == 1
    assert "more findings like those above (--format json lists every one)" in result.stdout
    assert result.stdout.count("overlaps") <= 10
    report = json.loads(cli("validate", write_site(tmp_path, {"networks.workload.ranges": ranges}),
                            "--format", "json").stdout)
    assert len([f for f in report["findings"] if "overlaps" in f["message"]]) == 149


# One signal here, through the real stages; that SIGINT, SIGTERM and SIGHUP stop a run alike is
# test_interruption.py's test_each_stopping_signal_is_the_same (each run costs a kernel's start).
@pytest.mark.parametrize("signame", ["SIGHUP"])
def test_a_run_stopped_by_a_signal_stops_its_kernel_and_keeps_the_record(tmp_path, signame):
    """A closed terminal (SIGHUP) or a CI timeout (SIGTERM) once left the kernel running unsupervised,
    the record unexported and unscrubbed, and the runner silent."""
    import signal
    import time

    notebooks = notebooks_with_a_long_plan(tmp_path / "notebooks")
    (tmp_path / "tmp").mkdir()
    proc = subprocess.Popen([str(SCRIPT), "run", write_site(tmp_path), "--stages", "networks", "--output",
                             tmp_path / "runs"], env={**os.environ, "TKGS_NOTEBOOKS": str(notebooks),
                                                      "TMPDIR": str(tmp_path / "tmp")},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    kernels: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not kernels:  # until the kernel runs the long step
        time.sleep(0.5)
        if any(at_long_step(record) for record in (tmp_path / "runs").glob("*/01_plan_networks.ipynb")):
            time.sleep(1)  # the kernel takes the cell papermill has just marked running
            kernels = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert kernels, "the stage never reached its long step"
    argv = Path(f"/proc/{kernels[0]}/cmdline").read_bytes().split(b"\0")
    connection_file = Path(argv[argv.index(b"-f") + 1].decode())
    assert connection_file.exists() and connection_file.parent.stat().st_mode & 0o077 == 0  # a private folder
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert f"interrupted: stage 'networks' (Plan the networks) was interrupted by {signame}. It changed nothing." in err
    assert "Traceback" not in err and "IPKernelApp" not in err and "zmq" not in err.lower(), err
    (folder,) = (tmp_path / "runs").iterdir()
    assert (folder / "01_plan_networks.html").exists()  # the record, exported
    # The record says exactly which cells ran: papermill's clean-up once marked the rest completed.
    record = json.loads((folder / "01_plan_networks.ipynb").read_text())
    banner, *cells = record["cells"]
    assert banner["metadata"]["tags"] == ["tkgs-interrupted"] and "interrupted while In [" in "".join(banner["source"])
    statuses = [c["metadata"]["papermill"]["status"] for c in cells if c["cell_type"] == "code"]
    assert statuses[-2:] == ["failed", "pending"], statuses
    assert set(statuses[:-2]) == {"completed"}
    assert "Interrupted here" in json.dumps(cells[-2]["outputs"]) and cells[-1]["execution_count"] is None
    time.sleep(1)
    assert [pid for pid in kernels if Path(f"/proc/{pid}").exists()] == [], "the kernel outlived the run"
    # The kernel's connection file (its signing key) is removed with it; nothing went to TMPDIR.
    assert not connection_file.exists() and not connection_file.parent.exists()
    assert list((tmp_path / "tmp").iterdir()) == []


def test_a_second_apply_of_the_same_site_stops_naming_the_run_that_holds_it(tmp_path):
    from tkgs_lib.runner.folders import apply_lock
    from tkgs_lib.site import load_site

    site = write_site(tmp_path)
    cache = tmp_path / "cache"
    os.environ["TKGS_CACHE_DIR"] = str(cache)
    try:
        held = apply_lock(load_site(site), tmp_path / "the-first-run")
    finally:
        del os.environ["TKGS_CACHE_DIR"]
    try:
        result = cli("run", site, "--stages", "prepare", "--apply", "--output", tmp_path / "runs",
                     env={"TKGS_CACHE_DIR": str(cache)})
        assert result.returncode == 1
        assert "another apply of site 'lab01' against vCenter vcenter.test.corp:443 is running" in result.stderr
        assert "the-first-run" in result.stderr and "process" in result.stderr
    finally:
        held.close()
    # Released: a plan-only run never takes it, and the next apply may (here it stops at vCenter itself).
    again = cli("run", site, "--stages", "networks", "--apply", "--output", tmp_path / "runs",
                env={"TKGS_CACHE_DIR": str(cache)})
    assert again.returncode == 0, again.stderr


def test_lab_on_a_port_in_use_does_not_start_elsewhere(tmp_path):
    """`--port` is where a browser or an SSH tunnel is pointed: JupyterLab's habit of taking the next
    free port would serve the lab where nobody looks. It stops instead, saying the port is taken."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TKGS_", "JUPYTER_"))}
        result = subprocess.run([str(SCRIPT), "lab", "--port", str(port), "--no-browser"], capture_output=True,
                                text=True, timeout=120, env={**env, "HOME": str(tmp_path), "JUPYTER_TOKEN": "x" * 32})
    assert result.returncode == 1, result.stderr[-2000:]
    assert f"could not be started because port {port} is not available" in result.stderr, result.stderr[-2000:]


def test_ctrl_c_in_a_command_that_changes_nothing_says_so_in_words(monkeypatch, capsys):
    """Outside run and demo, Ctrl-C is Python's own KeyboardInterrupt, which says nothing: the line
    once read "interrupted:  arrived before anything was changed"."""
    import signal

    from tkgs_lib import cli as cli_module

    def interrupted(args):
        raise KeyboardInterrupt()

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # this test's process keeps its handlers
    monkeypatch.setattr(cli_module, "cmd_validate", interrupted)
    assert cli_module.main(["validate", str(EXAMPLE_SITE)]) == 130
    assert capsys.readouterr().err == "interrupted: Ctrl-C arrived before anything was changed.\n"


# --- fields and run --help, as a terminal shows them -------------------------------------------

def test_fields_fits_a_100_column_terminal_with_each_meaning_under_its_key():
    from tkgs_lib.site import field_docs

    result = cli("fields")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if len(line) > 100] == []
    keys = [line.split("  (", 1)[0] for line in lines if not line.startswith(" ")]
    assert keys == [r["key"] for r in field_docs()]
    server = lines.index("vcenter.server  (text; required)")
    assert lines[server + 1] == "    vCenter's host name or address, as its certificate names it."
    assert "haproxy.boot_timeout  (number; default " in result.stdout


@pytest.mark.parametrize("command", [("fields",), ("fields", "--format", "markdown"), ("validate", EXAMPLE_SITE)])
def test_output_into_a_pipe_whose_reader_is_gone_ends_quietly(command):
    """`tkgs-runbook fields | head`: the reader leaves before the output ends; like any Unix tool the
    command ends without a word (no BrokenPipeError traceback), with SIGPIPE's status."""
    process = subprocess.Popen([str(SCRIPT), *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # gone before the command's first write (it takes a moment to start)
    stderr = process.stderr.read().decode()
    assert stderr == ""
    assert process.wait(timeout=60) == 141


def test_fields_piped_into_head_says_nothing_on_stderr():
    result = subprocess.run(["bash", "-o", "pipefail", "-c", f"'{SCRIPT}' fields | head -n 3"], capture_output=True,
                            text=True, timeout=60)
    assert result.stderr == ""
    assert result.stdout.splitlines()[0] == "site  (text; required)"
    assert result.returncode in (0, 141)


def test_run_help_lists_every_stage_with_its_title():
    from tkgs_lib.stages import STAGES

    result = cli("run", "--help")
    assert result.returncode == 0
    listed = result.stdout.split("the stages, in runbook order:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed] == [s.name for s in STAGES]
    for stage, line in zip(STAGES, listed):
        assert stage.title in line and (not stage.changes or f"changes {stage.changes}" in line)
        assert line.endswith("; only when named") == stage.on_request, line


def test_a_day_2_stage_runs_only_when_named():
    from tkgs_lib.stages import STAGES, select_stages

    assert [s.name for s in select_stages(None)] == [s.name for s in STAGES
                                                    if s.name not in ("rotate", "upgrade", "destroy")]
    assert [s.name for s in select_stages(["rotate"])] == ["rotate"]
    assert [s.name for s in select_stages(["upgrade"])] == ["upgrade"]
    assert [s.name for s in select_stages(["verify,rotate"])] == ["verify", "rotate"]


# --- a file that is not a site file is never echoed ---------------------------------------------

def shown_parts(text: str) -> list[str]:
    return [part for part in SHADOW_PARTS if part in text]


def every_file_shows(folder: Path) -> dict[str, list[str]]:
    """Each file under ``folder`` that shows a part of the shadow lines, and which parts."""
    return {str(p.relative_to(folder)): shown_parts(p.read_bytes().decode(errors="replace"))
            for p in sorted(folder.rglob("*")) if p.is_file() and shown_parts(p.read_bytes().decode(errors="replace"))}


@pytest.fixture
def shadow_link(tmp_path) -> Path:
    """site.yaml: a symlink to a file in /etc/shadow's format."""
    (tmp_path / "shadow").write_text(SHADOW)
    (tmp_path / "site.yaml").symlink_to(tmp_path / "shadow")
    return tmp_path / "site.yaml"


def test_validate_a_link_to_a_shadow_file_says_in_one_sentence_it_is_not_a_site_file(shadow_link):
    result = cli("validate", shadow_link.name, cwd=shadow_link.parent)
    assert result.returncode == 2
    assert result.stderr == ("error: site.yaml: is not a site file: none of its keys is one a site file has (site, "
                             "vcenter, networks, haproxy...).\n")
    assert result.stdout == ""
    json_result = cli("validate", shadow_link, "--format", "json")
    assert shown_parts(json_result.stdout + json_result.stderr) == []


def test_run_on_a_link_to_a_shadow_file_stops_before_a_run_folder_and_shows_none_of_it(shadow_link, tmp_path):
    result = cli("run", shadow_link, "--stages", "networks", "--output", tmp_path / "runs")
    assert result.returncode == 2
    assert "is not a site file" in result.stderr
    assert shown_parts(result.stdout + result.stderr) == []
    assert not (tmp_path / "runs").exists() or every_file_shows(tmp_path / "runs") == {}


def test_lines_of_a_shadow_file_pasted_into_a_site_reach_no_file_of_the_run(tmp_path):
    """A site with /etc/shadow's lines pasted below it: the plan stage runs and reports one finding that
    counts them; stderr, the notebook, its HTML, stages.json and index.html hold no part of them."""
    site = tmp_path / "site.yaml"
    site.write_text(EXAMPLE_SITE.read_text() + SHADOW)
    result = cli("run", site, "--stages", "networks", "--output", tmp_path / "runs")
    assert result.returncode == 1, result.stderr  # the plan stage fails on the error finding
    assert shown_parts(result.stdout + result.stderr) == []
    (folder,) = (tmp_path / "runs").iterdir()
    names = {p.name for p in folder.iterdir()}
    assert {"01_plan_networks.ipynb", "01_plan_networks.html", "stages.json", "index.html"} <= names
    assert "has 4 keys that are not plain names" in (folder / "01_plan_networks.ipynb").read_text()
    assert every_file_shows(folder) == {}

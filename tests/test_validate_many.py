"""`tkgs-runbook validate SITE...`: many site files in one process, a line each, a total, the worst exit."""

from __future__ import annotations

import json
import subprocess
import sys

from test_cli import cli, write_site


def _fleet_of_files(tmp_path, bad=None):
    files = [write_site(tmp_path, {"site": f"lab{i:02}"}, name=f"lab{i:02}.yaml") for i in range(5)]
    if bad is not None:
        files.insert(2, write_site(tmp_path, {"site": "broken", **bad}, name="broken.yaml"))
    return files


def test_a_bad_site_among_good_ones_names_its_file_and_field(tmp_path):
    files = _fleet_of_files(tmp_path, bad={"networks.workload.gateway": "10.64.16.1"})
    result = cli("validate", *files)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    for path in files:  # one summary line per site, in the order given
        assert sum(line.startswith(f"{path}: ") for line in lines) == 1, result.stdout
    (broken,) = [i for i, line in enumerate(lines) if line.startswith(f"{tmp_path / 'broken.yaml'}: ")]
    assert lines[broken].endswith(": 1 error, 1 warning.")
    assert lines[broken + 1].startswith("  ERROR networks.workload.gateway: gateway 10.64.16.1 is outside")
    assert "WARNING" not in result.stdout  # counted, not listed: one in every site would bury the error
    assert lines[-1] == "6 site files: 5 without errors, 1 with errors, 0 unreadable; 1 error and 6 warnings in all."
    assert "Subnet summary" not in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_an_unreadable_file_is_one_line_and_the_worst_exit_status(tmp_path):
    files = _fleet_of_files(tmp_path, bad={"networks.workload.gateway": "10.64.16.1"})
    (tmp_path / "not-yaml.yaml").write_text("networks: [")
    result = cli("validate", *files, tmp_path / "not-yaml.yaml", tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert f"{tmp_path / 'not-yaml.yaml'}: is not valid YAML at line " in result.stdout
    assert f"{tmp_path / 'missing.yaml'}: no such site file." in result.stdout
    assert result.stdout.splitlines()[-1].startswith("8 site files: 5 without errors, 1 with errors, 2 unreadable;")
    assert "Traceback" not in result.stdout + result.stderr


def test_many_files_as_json(tmp_path):
    files = _fleet_of_files(tmp_path, bad={"vcenter.password": "hunter2"})
    result = cli("validate", *files, tmp_path / "missing.yaml", "--format", "json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert [s["site"] for s in report["sites"]] == [str(p) for p in files] + [str(tmp_path / "missing.yaml")]
    broken = report["sites"][2]
    assert broken["errors"] == 1 and [f["path"] for f in broken["findings"] if f["severity"] == "error"] == [
        "vcenter.password"]
    assert report["errors"] == 1 and report["unreadable"] == 1
    assert "no such site file" in report["sites"][-1]["unreadable"]
    assert "hunter2" not in result.stdout


def test_validate_imports_no_pandas_nor_notebook_machinery(tmp_path):
    """Most of what one validate cost was importing what a validation never uses."""
    files = _fleet_of_files(tmp_path)
    probe = ("import sys\nfrom tkgs_lib.cli import main\nstatus = main(['validate', *sys.argv[1:]])\n"
             "heavy = sorted(m for m in ('pandas', 'numpy', 'matplotlib', 'nbformat', 'papermill', 'pyVmomi', "
             "'requests', 'paramiko', 'cryptography') if m in sys.modules)\n"
             "print('heavy:', heavy, file=sys.stderr)\nsys.exit(status)")
    for args in ([str(files[0])], [str(p) for p in files]):  # the tables of one, the lines of many
        result = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert "heavy: []" in result.stderr

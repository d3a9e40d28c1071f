"""The running appliance's CA and key, read over SSH to carry them to a new release (an upgrade keeps the CA
the Supervisor trusts): against the simulated appliance, booted with a CA of the user's own; the key handed
to the runner as a secret read at run time, and never in a repr or a message."""

from __future__ import annotations

import pytest

from appliance_fixtures import PASSWORD_ENV, start_appliance
from tkgs_lib.appliance.ca import check_ca_pair
from tkgs_lib.appliance.carried_ca import read_running_ca
from tkgs_lib.credentials import LEARNED_SECRETS_ENV, learned_secrets, plain
from tkgs_lib.errors import ApplianceError
from tkgs_lib.stages.flow import StageRun

pytestmark = pytest.mark.slow


@pytest.fixture
def lab(tmp_path, monkeypatch):
    for name, value in PASSWORD_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(LEARNED_SECRETS_ENV, str(tmp_path / "learned"))  # as the runner sets it for its kernels
    lab = start_appliance(tmp_path, own_ca=True)
    yield lab
    lab.sim.stop()


def _read(lab, work):
    def inside():
        run = StageRun("verify", lab.site, lab.run_folder, progress=False)
        return work(run.connect_appliance())

    return lab.sim.in_lab(inside)


def test_the_ca_and_key_the_appliance_holds_are_read_and_the_key_handed_to_the_runner(lab, tmp_path):
    site = lab.site
    ca, key = check_ca_pair(site.haproxy.ca_cert_file, site.haproxy.ca_key_file)  # what it was deployed with
    carried = _read(lab, lambda runner: read_running_ca(runner, "10.64.2.10"))
    assert carried.ca.fingerprint == ca.fingerprint
    assert plain(carried.key) == key and "PRIVATE KEY" not in repr(carried) + str(carried.key)
    assert key.strip() in learned_secrets(tmp_path / "learned")


def test_an_appliance_without_its_ca_key_is_refused_in_one_sentence_naming_the_file(lab, tmp_path):
    _read(lab, lambda runner: runner.run("mv /etc/haproxy/ca.key /etc/haproxy/ca.key.moved"))
    with pytest.raises(ApplianceError) as refused:
        _read(lab, lambda runner: read_running_ca(runner, "10.64.2.10"))
    message = str(refused.value)
    assert message.startswith("the appliance 10.64.2.10 did not give its CA to carry to the new release: "
                              "`cat /etc/haproxy/ca.key` (the appliance's CA key /etc/haproxy/ca.key) failed")
    assert "haproxy.ca_key_file" in message and "PRIVATE KEY" not in message

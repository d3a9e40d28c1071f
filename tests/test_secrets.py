"""No object that holds a secret shows it: repr, str, f-strings and logging of each, as the code builds
them from secrets read the way a stage reads them; one list says what is secret; and the CA's private
key is scrubbed and scanned for like the passwords."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import pkgutil
import re

import pytest
import yaml

import tkgs_lib
from appliance_material import write_ca
from helpers import variant
from tkgs_lib.appliance.properties import appliance_properties
from tkgs_lib.credentials import (SECRET_PROPERTIES, SECRETS, Secret, plain, read_secret, scan_for_secrets,
                                  scrub_text, secret_values)
from tkgs_lib.ova import parse_descriptor
from tkgs_simulators.ova import haproxy_descriptor
from tkgs_lib.site import parse_site
from tkgs_lib.site.layout import network_layout

ROOT, DATAPLANE, VCENTER = "canary-r00t-secret-9f3", "canary-dataplane-secret-77a", "canary-vcenter-secret-c1e"


def shows(obj) -> str:
    """Every way an object is turned into text: repr, str, an f-string, %-formatting, a log record."""
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%s %r", (obj, obj), None)
    return "\n".join([repr(obj), str(obj), f"{obj}", "%s" % (obj,), logging.Formatter().format(record)])


def leaked(text: str) -> list[str]:
    return [s for s in (ROOT, DATAPLANE, VCENTER) if s in text]


@pytest.fixture
def secrets_in_env(monkeypatch):
    for name, value in (("TKGS_HAPROXY_ROOT_PASSWORD", ROOT), ("TKGS_HAPROXY_DATAPLANE_PASSWORD", DATAPLANE),
                        ("TKGS_VCENTER_PASSWORD", VCENTER)):
        monkeypatch.setenv(name, value)


def test_a_secret_read_shows_as_asterisks_and_is_sent_whole(secrets_in_env):
    secret = read_secret("TKGS_HAPROXY_ROOT_PASSWORD", "the root password", "haproxy.root_password_env")
    assert isinstance(secret, Secret) and leaked(shows(secret)) == [] and leaked(shows([secret, {"k": secret}])) == []
    assert plain(secret) == ROOT and secret == ROOT  # its characters reach the transport that sends it
    assert plain(Secret(secret)) == ROOT  # wrapped again, it still holds the characters, not the mask


def test_the_deploy_spec_and_every_property_value_hide_the_passwords(secrets_in_env):
    from tkgs_lib.vsphere.vm import DeploySpec, Placement

    site = parse_site(yaml.safe_dump(variant()))
    passwords = {"appliance.root_pwd": read_secret("TKGS_HAPROXY_ROOT_PASSWORD", "root", "x"),
                 "loadbalance.haproxy_pwd": read_secret("TKGS_HAPROXY_DATAPLANE_PASSWORD", "dataplane", "x")}
    props = appliance_properties(site, network_layout(site), parse_descriptor(haproxy_descriptor()), passwords)
    assert props.findings == []
    for value in props.values:
        assert leaked(shows(value)) == [], value.key
    assert leaked(shows(props)) == [] and leaked(props.table().to_text()) == []
    spec = DeploySpec("haproxy01", "frontend", {}, props.as_dict(), SECRET_PROPERTIES,
                      Placement("f", "f", "p", "p", "d", "d", None, None), "thin")
    assert leaked(shows(spec)) == [] and leaked(spec.describe()) == []
    assert plain(spec.properties["appliance.root_pwd"]) == ROOT  # what is sent


def test_the_ssh_runner_rest_client_and_enable_spec_hide_them(secrets_in_env):
    from tkgs_lib.appliance.ssh import SshRunner
    from tkgs_lib.vsphere.namespace_management import (AddressRange, HaproxyLoadBalancer, ManagementNetwork,
                                                       WorkloadNetwork, build_enable_spec)

    runner = SshRunner("10.64.2.10", password=read_secret("TKGS_HAPROXY_ROOT_PASSWORD", "root", "x"),
                       trust_on_first_use=True)
    assert leaked(shows(runner)) == [] and leaked(shows(vars(runner))) == []
    balancer = HaproxyLoadBalancer("haproxy", (("10.64.2.10", 5556),), "admin",
                                   read_secret("TKGS_HAPROXY_DATAPLANE_PASSWORD", "dataplane", "x"),
                                   "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----",
                                   (AddressRange("10.64.1.0", 255),))
    assert leaked(shows(balancer)) == []
    spec = build_enable_spec(size="tiny", service_cidr="10.96.0.0/23",
                             management=ManagementNetwork("dvportgroup-1", "10.64.2.20", 5, "255.255.254.0", "10.64.2.1"),
                             workload=WorkloadNetwork("network-1", "dvportgroup-2", (AddressRange("10.64.8.50", 100),),
                                                      "10.64.8.1", "255.255.248.0"),
                             load_balancer=balancer, storage_policy="policy-1", master_dns=["10.64.2.1"])
    assert leaked(shows(spec)) == []


SECRETISH = re.compile(r"password|passwd|pwd|secret|token|private|key_pem", re.IGNORECASE)
NOT_SECRETS = {("tkgs_lib.ova", "OvfProperty", "password"),  # whether the OVA declares a property a password
               ("tkgs_lib.vsphere.vm", "DeploySpec", "password_keys"),  # which keys are secret, not their values
               ("tkgs_lib.fleet.file", "FleetEntry", "passwords"),  # variable → Airflow connection id
               ("tkgs_lib.fleet.file", "FleetEntry", "secret_fields"),  # site field → the variable's name
               ("tkgs_lib.stages", "Stage", "secrets"),  # the site fields naming the secrets a stage may read
               ("tkgs_lib.appliance.hardening", "SshdSettings", "password_authentication"),  # sshd's yes or no
               ("tkgs_lib.stages.harden", "HardenFacts", "secret_properties")}  # property → where vCenter holds one


def test_every_dataclass_field_that_could_hold_a_secret_is_a_secret_or_kept_out_of_repr():
    """A walk of the package's dataclasses: a field named like a secret is typed Secret, or kept out of
    repr, or is one of the few that name a secret without holding it (an environment variable's name)."""
    offenders = []
    for info in pkgutil.walk_packages(tkgs_lib.__path__, "tkgs_lib."):
        if info.name.endswith("airflow_dags"):  # needs the airflow extra; it holds no dataclass of secrets
            continue
        if info.name.endswith("fleet.airflow") and importlib.util.find_spec("airflow") is None:
            continue  # needs the airflow extra: its fields are checked where it is installed
        module = importlib.import_module(info.name)
        for name, cls in vars(module).items():
            if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == module.__name__):
                continue
            for f in dataclasses.fields(cls):
                key = (cls.__module__, cls.__name__, f.name)
                if SECRETISH.search(f.name) and f.repr and not f.name.endswith("_env") and key not in NOT_SECRETS \
                        and "Secret" not in str(f.type):
                    offenders.append(".".join(key))
    assert offenders == []


def test_one_list_says_what_is_secret_and_everything_reads_it():
    from tkgs_lib.appliance.properties import PropertyValue

    assert SECRET_PROPERTIES == {"appliance.root_pwd", "loadbalance.haproxy_pwd", "appliance.ca_cert_key"}
    assert [k.field for k in SECRETS] == ["vcenter.password_env", "haproxy.dataplane_password_env",
                                          "haproxy.root_password_env", "haproxy.ca_key_file",
                                          "rotate.dataplane_password_env", "rotate.root_password_env"]
    assert PropertyValue("appliance.ca_cert_key", "k", "haproxy.ca_key_file").password
    assert not PropertyValue("network.hostname", "h", "haproxy.hostname").password


def test_the_cas_private_key_is_scrubbed_and_scanned_for(tmp_path):
    cert, key = write_ca(tmp_path / "ca")
    site = parse_site(yaml.safe_dump(variant({"haproxy.ca_cert_file": str(cert), "haproxy.ca_key_file": str(key)})),
                      source=tmp_path / "site.yaml")
    values = secret_values(site)
    key_text = key.read_text().strip()
    assert key_text in values
    body_line = [line for line in key_text.splitlines() if "-----" not in line][1]
    one_line = " ".join(key_text.splitlines())  # as the appliance property carries it
    run = tmp_path / "run"
    run.mkdir()
    for name, text in (("as-file.txt", key_text), ("one-line.txt", one_line), ("a-line.txt", f"x {body_line} y")):
        (run / name).write_text(text)
        assert scrub_text(text, values).count(body_line) == 0, name
    hits = {name for name, _ in scan_for_secrets(run, values)}
    assert hits == {"as-file.txt", "one-line.txt", "a-line.txt"}


def test_the_kubeconfigs_credentials_are_scanned_for(tmp_path, monkeypatch):
    """The cluster stage keeps a kubeconfig outside the run folder; its token and client key are secrets the
    run scrubs and scans for, as written and the key decoded (issue 26)."""
    import base64

    from tkgs_lib.kubernetes.tanzu import write_kubeconfig
    from tkgs_lib.paths import kubeconfig_file

    monkeypatch.setenv("TKGS_KUBECONFIG_DIR", str(tmp_path / "kube"))
    site = parse_site(yaml.safe_dump(variant()), source=tmp_path / "site.yaml")
    assert not [v for v in secret_values(site) if "token" in v]
    _, key = write_ca(tmp_path / "ca")
    key_data = base64.b64encode(key.read_bytes()).decode()
    path = write_kubeconfig(kubeconfig_file(site.site, "tkgs-demo", "tkc-01"), [
        ("tkgs-demo", {"server": "https://10.64.1.0:6443"}, {"token": "session-token-of-the-supervisor"}),
        ("tkc-01", {"server": "https://10.64.1.1:6443"}, {"client-certificate-data": "Y2VydA==",
                                                          "client-key-data": key_data})], "tkc-01")
    assert oct(path.stat().st_mode & 0o777) == "0o600" and oct(path.parent.stat().st_mode & 0o777) == "0o700"
    values = secret_values(site)
    assert "session-token-of-the-supervisor" in values and key_data in values
    assert key.read_text().strip() in values  # decoded too, and each long line of its body
    assert "Y2VydA==" not in values  # a certificate is no secret
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "leak.txt").write_text(f"the key: {key_data}")
    assert scan_for_secrets(folder, values) == [("leak.txt", "plain")]

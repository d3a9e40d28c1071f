"""The appliance's vApp properties: mapped from the site exactly, checked against the OVA's own
descriptor (the real one when ../shared is beside the checkout, the generated one otherwise)."""

from __future__ import annotations

import re

import pytest
import yaml

from appliance_material import REFERENCE_OVF, descriptor_text, write_ca
from helpers import variant
from tkgs_lib.appliance.ca import pem_from_property
from tkgs_lib.appliance.properties import DATAPLANE_PASSWORD, ROOT_PASSWORD, appliance_properties
from tkgs_lib.ova import parse_descriptor
from tkgs_lib.site import parse_site
from tkgs_lib.site.layout import network_layout

PASSWORDS = {ROOT_PASSWORD: "r00t-Pa55", DATAPLANE_PASSWORD: "dp-Pa55"}


def properties_for(changes=None, version="v0.1.10", descriptor=None, tmp=None):
    site = parse_site(yaml.safe_dump(variant(changes)), source=tmp / "site.yaml" if tmp else None)
    return appliance_properties(site, network_layout(site), parse_descriptor(descriptor or descriptor_text(version)),
                                PASSWORDS)


def test_the_articles_site_maps_to_exactly_these_properties():
    props = properties_for()
    assert props.findings == []
    assert props.as_dict() == {
        "appliance.root_pwd": "r00t-Pa55",
        "appliance.permit_root_login": "True",
        "network.hostname": "haproxy01.test.corp",
        "network.nameservers": "10.64.2.1",
        "network.management_ip": "10.64.2.10/23",
        "network.management_gateway": "10.64.2.1",
        "network.workload_ip": "10.64.8.10/21",
        "network.workload_gateway": "10.64.8.1",
        "network.frontend_ip": "10.64.0.10/23",
        "network.frontend_gateway": "10.64.0.1",
        "loadbalance.service_ip_range": "10.64.1.0/24",
        "loadbalance.dataplane_port": "5556",
        "loadbalance.haproxy_user": "admin",
        "loadbalance.haproxy_pwd": "dp-Pa55",
    }
    fields = {v.key: v.field for v in props.values}
    assert fields["network.frontend_gateway"] == "networks.frontend.gateway"
    assert fields["appliance.root_pwd"] == "$TKGS_HAPROXY_ROOT_PASSWORD"


def test_the_table_masks_every_password():
    table = properties_for().table()
    text = table.to_text() + table._repr_html_()
    assert "r00t-Pa55" not in text and "dp-Pa55" not in text
    rows = {r["property"]: r for r in table.records()}
    assert rows["appliance.root_pwd"]["value"] == "********" and rows["appliance.root_pwd"]["from"] == \
        "$TKGS_HAPROXY_ROOT_PASSWORD"
    assert rows["network.hostname"]["value"] == "haproxy01.test.corp"


def test_load_balancer_ranges_are_joined_by_commas_alone_byte_for_byte_as_the_plan_showed():
    ranges = ["10.64.1.0/25", "10.64.1.128/26", "10.64.1.192/27"]
    props = properties_for({"haproxy.load_balancer_ranges": ranges})
    value = props.as_dict()["loadbalance.service_ip_range"]
    assert value == "10.64.1.0/25,10.64.1.128/26,10.64.1.192/27" and " " not in value
    site = parse_site(yaml.safe_dump(variant({"haproxy.load_balancer_ranges": ranges})))
    assert value.split(",") == network_layout(site).load_balancer_lines  # what anyip-routes.cfg will hold


def test_under_default_the_frontend_properties_are_not_sent():
    props = properties_for({"haproxy.deployment": "default", "haproxy.frontend_ip": None,
                            "haproxy.load_balancer_ranges": ["10.64.12.0/24"]}, )
    sent = props.as_dict()
    assert props.findings == [] and not [k for k in sent if "frontend" in k]
    assert sent["loadbalance.service_ip_range"] == "10.64.12.0/24"


def test_a_property_the_ova_does_not_declare_is_refused_naming_field_and_key():
    props = properties_for({"haproxy.additional_workload_networks": ["10.64.16.0/21"]}, version="v0.1.10")
    (finding,) = props.findings
    assert finding.path == "haproxy.additional_workload_networks" and finding.is_error
    assert "does not declare the property network.additional_workload_networks" in finding.message
    assert "network.additional_workload_networks" not in props.as_dict()
    # The v0.2.0 appliance declares it: sent, joined by commas.
    newer = properties_for({"haproxy.additional_workload_networks": ["10.64.16.0/21", "10.64.24.0/21"]},
                           version="v0.2.0")
    assert newer.findings == []
    assert newer.as_dict()["network.additional_workload_networks"] == "10.64.16.0/21,10.64.24.0/21"


def _descriptor_with(pattern: str, replacement: str) -> str:
    text, count = re.subn(pattern, replacement, descriptor_text())
    assert count == 1, pattern
    return text


def test_a_value_outside_the_declared_type_or_qualifiers_is_refused():
    narrow = _descriptor_with(r'MinValue\(1\),MaxValue\(65535\)', "MinValue(1),MaxValue(1024)")
    (finding,) = properties_for(descriptor=narrow).findings
    assert finding.path == "haproxy.dataplane_port" and "loadbalance.dataplane_port" in finding.message
    assert "5556 is outside 1..1024" in finding.message

    as_int = _descriptor_with(r'(ovf:key="permit_root_login" ovf:type=)"boolean"', r'\1"int"')
    (finding,) = properties_for(descriptor=as_int).findings
    assert finding.path == "haproxy.permit_root_login" and "'True' is not a whole number" in finding.message


def test_a_deployment_option_the_ova_lacks_is_refused():
    single = re.sub(r'\s*<Configuration ovf:id="frontend">.*?</Configuration>', "", descriptor_text(), flags=re.S)
    props = properties_for(descriptor=single)
    assert [(f.path, f.is_error) for f in props.findings] == [("haproxy.deployment", True)]
    assert "has no deployment option 'frontend' (it has default)" in props.findings[0].message


def test_a_users_own_ca_is_sent_as_one_line_pem_the_appliance_reads_back(tmp_path):
    cert, key = write_ca(tmp_path, pkcs1=True)
    props = properties_for({"haproxy.ca_cert_file": str(cert), "haproxy.ca_key_file": str(key)}, tmp=tmp_path)
    assert props.findings == []
    sent = props.as_dict()
    assert "\n" not in sent["appliance.ca_cert"] and "\n" not in sent["appliance.ca_cert_key"]
    # What the appliance's first boot writes back out of the property: the very certificate.
    assert pem_from_property(sent["appliance.ca_cert"]) == cert.read_text()
    # The key goes as PKCS#8 whatever the file held: "RSA PRIVATE KEY" would break on the appliance.
    assert pem_from_property(sent["appliance.ca_cert_key"]).startswith("-----BEGIN PRIVATE KEY-----\n")
    shown = {r["property"]: r["value"] for r in props.table().records()}
    assert shown["appliance.ca_cert_key"] == "********" and shown["appliance.ca_cert"].startswith("-----BEGIN")


@pytest.mark.parametrize("problem, words", [
    ("mismatch", "do not belong together"),
    ("not a CA", "but not a CA"),
    ("expired", "is not valid now"),
])
def test_a_users_ca_that_cannot_serve_is_one_sentence_naming_the_files(tmp_path, problem, words):
    cert, key = write_ca(tmp_path / "a", ca=problem != "not a CA", expired=problem == "expired")
    if problem == "mismatch":
        _, key = write_ca(tmp_path / "b")
    props = properties_for({"haproxy.ca_cert_file": str(cert), "haproxy.ca_key_file": str(key)}, tmp=tmp_path)
    (finding,) = props.findings
    assert finding.path == "haproxy.ca_cert_file" and words in finding.message
    assert str(cert) in finding.message and "\n" not in finding.message
    if problem == "mismatch":
        assert str(key) in finding.message
    assert "appliance.ca_cert" not in props.as_dict()


def test_a_ca_certificate_without_its_key_is_a_site_finding():
    site = parse_site(yaml.safe_dump(variant({"haproxy.ca_cert_file": "/etc/ssl/ca.crt"})))
    (finding,) = [f for f in site.findings if f.is_error]
    assert finding.path == "haproxy.ca_key_file" and "is missing while haproxy.ca_cert_file is set" in finding.message


@pytest.mark.skipif(not REFERENCE_OVF.is_dir(), reason="the appliance's reference descriptors are not here")
def test_the_real_descriptors_are_the_ones_in_use_here():
    for version in ("v0.1.10", "v0.2.0"):
        assert descriptor_text(version) == (REFERENCE_OVF / f"haproxy-{version}.ovf").read_text()
        assert properties_for(version=version).findings == []

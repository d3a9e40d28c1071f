"""Hostile values in every field of a site file are refused at the desk, naming the field and saying why.

Every text field of the model gets each value a screen hides or misshows (NUL, a line break, a bell,
a right-to-left override, a zero-width space, a no-break space, a byte-order mark); every inventory
name vCenter looks up by path gets what vCenter escapes ('/', '\\', '%') and the path words '.' and
'..'; the Data Plane API user gets what its line of the appliance's haproxy.cfg cannot carry; a text
field gets a bare number. Each must be an error finding at that very field, the value shown escaped.
"""

from __future__ import annotations

import pytest
import yaml

from helpers import variant
from tkgs_lib.site import field_docs, parse_site
from tkgs_lib.site.layout import network_layout

HIDDEN = {"NUL": "tkgs\x00x", "line feed": "tkgs\nx", "bell": "tkgs\x07x", "right-to-left override": "tkgs\u202ex",
          "zero-width space": "tkgs\u200bx", "no-break space": "tkgs\u00a0x", "byte-order mark": "tkgs\ufeffx",
          "line separator": "tkgs\u2028x"}
INVENTORY = ["vcenter.datacenter", "vcenter.cluster", "vcenter.distributed_switch", "vcenter.datastores",
             "networks.management.portgroup", "networks.workload.portgroup", "networks.frontend.portgroup",
             "haproxy.vm_name", "haproxy.resource_pool", "haproxy.datastore", "content_libraries.datastore"]
TEXT_FIELDS = [r["key"] for r in field_docs() if r["type"].startswith(("text", "list of text"))]


def errors_at(changes: dict) -> dict[str, str]:
    site = parse_site(yaml.safe_dump(variant(changes)))
    return {f.path: f"{f.message} {f.fix}" for f in network_layout(site).findings if f.severity == "error"}


def assigned(field: str, value):
    listed = next(r for r in field_docs() if r["key"] == field)["type"].startswith("list of")
    return ([value], f"{field}[0]") if listed else (value, field)


@pytest.mark.parametrize("kind, text", HIDDEN.items(), ids=HIDDEN.keys())
def test_no_text_field_takes_a_character_a_screen_hides(kind, text):
    missed = []
    for field in TEXT_FIELDS:
        value, path = assigned(field, text)
        if path not in errors_at({field: value}):
            missed.append(field)
    assert missed == [], f"{kind} accepted in: {missed}"


def test_the_finding_names_the_character_and_shows_the_value_escaped():
    message = errors_at({"networks.workload.portgroup": "tkgs-\u202eworkload"})["networks.workload.portgroup"]
    assert message.startswith("holds U+202E RIGHT-TO-LEFT OVERRIDE (an invisible or control character) at character 6")
    assert "(written 'tkgs-\\u202eworkload')" in message


@pytest.mark.parametrize("text", ["tkgs/x", "tkgs\\x", "tkgs%x", ".", ".."])
def test_inventory_names_refuse_what_vcenter_escapes_in_them(text):
    missed = []
    for field in INVENTORY:
        value, path = assigned(field, text)
        if path not in errors_at({field: value}):
            missed.append(field)
    assert missed == [], f"{text!r} accepted in: {missed}"


def test_a_vm_folder_path_may_hold_slashes_between_its_names_only():
    assert "haproxy.vm_folder" not in errors_at({"haproxy.vm_folder": "tanzu/lb"})
    for bad in ("tanzu//lb", "tanzu/../lb", "tan%zu/lb"):
        assert "haproxy.vm_folder" in errors_at({"haproxy.vm_folder": bad}), bad


# '' is refused as empty (test_site walks every field)
@pytest.mark.parametrize("user", ["ad min", "admin#x", "ad'min", "ad\\min", "ad\"min", "a:b"])
def test_the_data_plane_api_user_is_what_its_haproxy_cfg_line_carries(user):
    found = errors_at({"haproxy.dataplane_username": user})
    assert "userlist" in found["haproxy.dataplane_username"] and "loadbalance.haproxy_user" in \
        found["haproxy.dataplane_username"]
    assert "haproxy.dataplane_username" not in errors_at({"haproxy.dataplane_username": "tkgs-admin_01.x"})


@pytest.mark.parametrize("thumbprint", ["AA:BB", "zz" * 20, "AA" * 20 + ":", ":".join(["AA"] * 32), "sha1 AA:BB"])
def test_a_subscribed_librarys_thumbprint_is_a_sha1_fingerprint(thumbprint):
    field = "content_libraries.kubernetes.ssl_thumbprint"
    assert "SHA-1 certificate fingerprint" in errors_at({field: thumbprint})[field]
    assert field not in errors_at({field: ":".join(["A0"] * 20)})


@pytest.mark.parametrize("field", ["vcenter.username", "haproxy.vm_name", "storage.tag", "haproxy.ssh_user"])
def test_a_bare_number_in_a_text_field_is_refused_with_the_quoted_form(field):
    message = errors_at({field: 123})[field]
    assert "write it in quotes, e.g. '123'" in message


@pytest.mark.parametrize("user", ["Root", "1root", "ro ot", "root\\x"])
def test_the_ssh_user_is_a_login_name(user):
    assert "haproxy.ssh_user" in errors_at({"haproxy.ssh_user": user})


def test_the_articles_site_is_still_clean():
    assert errors_at({}) == {}

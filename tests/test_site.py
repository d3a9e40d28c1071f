"""Loading the site file: strict keys, no secrets, typed values, paths relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import EXAMPLE_SITE, SHADOW, SHADOW_PARTS, at, variant
from tkgs_lib.errors import SiteError
from tkgs_lib.site import field_docs, load_site, parse_site


def test_the_articles_site_loads_unchanged_with_no_finding():
    site = load_site(EXAMPLE_SITE)
    assert site.findings == []
    assert site.site == "lab01"
    assert site.vcenter.datastores == ["vsanDatastore"]
    assert site.networks.workload.ranges == ["10.64.8.50-10.64.15.150"]
    assert site.haproxy.deployment == "frontend"
    # Both null: trust the system's CA store. Not an error, and never "don't verify".
    assert site.vcenter.ca_file is None and site.vcenter.thumbprint is None and site.vcenter.insecure is False


def _parse(data, source: Path | None = None):
    return parse_site(yaml.safe_dump(data), source=source)


def test_a_typo_is_an_unknown_key_error_that_suggests_the_right_one():
    data = variant()
    data["networks"]["frontend"]["gatway"] = data["networks"]["frontend"].pop("gateway")
    site = _parse(data)
    (f,) = at(site.findings, "networks.frontend.gatway")
    assert f.message == "unknown key."
    assert "did you mean `gateway`" in f.fix
    assert at(site.findings, "networks.frontend.gateway")  # and the real key is now missing


@pytest.mark.parametrize("dotted", ["vcenter.password", "haproxy.root_password", "haproxy.dataplane_password",
                                    "secret", "vcenter.token", "haproxy.root_pwd"])
def test_a_key_that_holds_a_secret_is_refused_with_the_reason(dotted):
    site = _parse(variant({dotted: "hunter2"}))
    (f,) = at(site.findings, dotted)
    assert "must not hold a secret" in f.message
    assert f"{dotted.split('.')[-1]}_env" in f.fix


def test_env_and_file_keys_are_fine():
    site = _parse(variant({"haproxy.ca_cert_file": "ca.pem", "haproxy.ca_key_file": "ca.key",
                           "vcenter.password_env": "MY_VC_PASSWORD"}))
    assert site.findings == []
    assert site.vcenter.password_env == "MY_VC_PASSWORD"


def test_relative_paths_are_relative_to_the_site_file(tmp_path):
    folder = tmp_path / "sites" / "lab01"
    folder.mkdir(parents=True)
    path = folder / "site.yaml"
    path.write_text(yaml.safe_dump(variant({"vcenter.ca_file": "certs/vc-ca.pem",
                                            "content_libraries.haproxy.ova": "../ova/haproxy.ova"})))
    site = load_site(path)
    assert site.vcenter.ca_file == str(folder / "certs" / "vc-ca.pem")
    assert site.content_libraries.haproxy.ova == str(tmp_path / "sites" / "ova" / "haproxy.ova")


def test_an_https_ova_stays_a_url():
    site = _parse(variant({"content_libraries.haproxy.ova": "https://example.invalid/haproxy-v0.1.10.ova"}))
    assert site.content_libraries.haproxy.ova == "https://example.invalid/haproxy-v0.1.10.ova"


@pytest.mark.parametrize("dotted, value, words", [
    ("networks.management.vlan", "twenty-six", "a whole number"),
    ("networks.management.vlan", True, "a whole number"),
    ("haproxy.permit_root_login", "yes please", "true or false"),
    ("vcenter.datastores", {"a": 1}, "a text value"),
    ("content_libraries.kubernetes.download", "later", "'immediately' or 'on_demand'"),
    ("networks.management", "10.64.2.0/23", "mapping"),
])
def test_wrong_types_name_the_field(dotted, value, words):
    site = _parse(variant({dotted: value}))
    assert any(words in f.message for f in site.findings if f.path.startswith(dotted)), site.findings


def test_a_missing_required_key_says_what_to_add():
    site = _parse(variant(remove=("networks.workload.gateway",)))
    (f,) = at(site.findings, "networks.workload.gateway")
    assert f.message == "is required but missing." and "gateway" in f.fix


def test_a_lone_value_is_a_one_item_list():
    site = _parse(variant({"haproxy.nameservers": "10.64.2.1"}))
    assert site.haproxy.nameservers == ["10.64.2.1"] and site.findings == []


@pytest.mark.parametrize("text, words", [
    ("site: [unclosed", r"not valid YAML at line [12]"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("", "this one is empty"),
])
def test_a_file_that_is_not_a_yaml_mapping_is_a_site_error(text, words):
    with pytest.raises(SiteError, match=words):
        parse_site(text)


def test_a_link_to_a_shadow_file_is_not_a_site_file_in_one_sentence_that_shows_none_of_it(tmp_path):
    (tmp_path / "shadow").write_text(SHADOW)
    (tmp_path / "site.yaml").symlink_to(tmp_path / "shadow")
    with pytest.raises(SiteError) as caught:
        load_site(tmp_path / "site.yaml")
    assert str(caught.value) == (f"{tmp_path / 'site.yaml'}: is not a site file: none of its keys is one a site file "
                                 f"has (site, vcenter, networks, haproxy...).")


def hidden_everywhere(site) -> list[str]:
    """The parts of the shadow lines that any finding shows (none may)."""
    text = "\n".join(str(f) for f in site.findings)
    return [part for part in SHADOW_PARTS + ("daemon", "nobody") if part in text]


def test_lines_of_another_file_pasted_into_a_site_are_counted_never_shown():
    site = parse_site(EXAMPLE_SITE.read_text() + SHADOW)
    (f,) = at(site.findings, "(top level)")
    assert f.message.startswith("has 4 keys that are not plain names (letters, digits, '_', '-' and '.'), not shown")
    assert f.fix == "remove them; the keys here are: site, vcenter, networks, haproxy, storage, content_libraries, " \
                    "workload_management, namespace, tanzu_cluster, rotate, upgrade."
    assert hidden_everywhere(site) == []
    data = variant()
    data["haproxy"][SHADOW.splitlines()[0].rstrip(":")] = None  # one, inside a block
    data["haproxy"]["x" * 41] = None  # a plain name, but too long to be a mistyped key
    site = _parse(data)
    (f,) = at(site.findings, "haproxy")
    assert f.message.startswith("has 2 keys that are not plain names")
    assert hidden_everywhere(site) == [] and "x" * 41 not in str(f)


def test_a_site_whose_every_key_is_mistyped_is_still_a_site_with_suggestions():
    site = parse_site("sitee: lab01\nvcentre: {}\n")
    assert "did you mean `site`?" in at(site.findings, "sitee")[0].fix
    assert "did you mean `vcenter`?" in at(site.findings, "vcentre")[0].fix


def test_a_duplicate_key_that_is_not_a_plain_name_is_not_shown():
    line = SHADOW.splitlines()[0]
    with pytest.raises(SiteError) as caught:
        parse_site(f"site: lab01\n{line}\n{line}\n")
    assert "a duplicate key (not a plain name: not shown)" in str(caught.value)
    assert [part for part in SHADOW_PARTS if part in str(caught.value)] == []


def test_missing_and_folder_paths_are_site_errors(tmp_path):
    with pytest.raises(SiteError, match="no such site file"):
        load_site(tmp_path / "nope.yaml")
    with pytest.raises(SiteError, match="is a folder"):
        load_site(tmp_path)


def test_every_field_is_documented_once():
    rows = field_docs()
    keys = [r["key"] for r in rows]
    assert len(keys) == len(set(keys))
    assert all(r["meaning"].strip() for r in rows)
    for key in ("vcenter.thumbprint", "networks.workload.ranges", "haproxy.load_balancer_ranges",
                "content_libraries.haproxy.ova", "storage.policy"):
        assert key in keys


def test_readme_field_table_is_generated_from_the_model():
    """The README's table is `tkgs-runbook fields --format markdown`: the model is the one source."""
    import contextlib
    import io

    from tkgs_lib.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["fields", "--format", "markdown"])
    readme = (EXAMPLE_SITE.parent.parent / "README.md").read_text()
    assert out.getvalue().strip() in readme


# --- YAML as a person means it, and no traceback for any input -------------------------------

def test_a_duplicate_key_is_an_error_naming_it_and_its_line():
    text = EXAMPLE_SITE.read_text().replace("    gateway: 10.64.0.1\n", "    gateway: 10.64.0.1\n    gateway: 10.64.0.2\n")
    with pytest.raises(SiteError, match=r"line \d+.*duplicate key 'gateway' \(the second would silently replace"):
        parse_site(text)


def test_whole_numbers_are_decimal_and_times_are_not_numbers():
    text = EXAMPLE_SITE.read_text().replace("vlan: 26", "vlan: 026").replace("port: 443", "port: 1:20")
    site = parse_site(text)
    assert site.networks.management.vlan == 26  # YAML 1.1 would read octal 22
    assert at(site.findings, "vcenter.port")  # YAML 1.1 would read 80


@pytest.mark.parametrize("text", [
    "site: " + "9" * 5000,
    "site: " + "[" * 3000 + "]" * 3000,
])
def test_pathological_yaml_is_a_site_error(text):
    with pytest.raises(SiteError):
        parse_site(text)


@pytest.mark.parametrize("dotted, value", [
    ("vcenter.port", "9" * 5000),
    ("networks.management.vlan", "²"),
    ("vcenter.ca_file", "~nosuchuser-tkgs/ca.pem"),
    ("vcenter.ca_file", "a\0b"),
    ("vcenter.server", ""),
    ("vcenter.datastores", None),
    ("haproxy.nameservers", []),
])
def test_odd_values_become_findings_at_their_field(dotted, value):
    site = _parse(variant({dotted: value}))
    assert [f for f in site.findings if f.is_error and f.path.startswith(dotted)], site.findings


LEAF_KEYS = [r["key"] for r in field_docs() if "mapping" not in r["type"]]


@pytest.mark.parametrize("key", LEAF_KEYS)
@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_text_is_refused_at_every_field_saying_what_to_write(key, empty):
    """'' is neither a value nor the default: `password_env: ''` read the variable named '', `datastores: ''`
    was one nameless datastore and `ca_file: ''` silently trusted the system store."""
    row = next(r for r in field_docs() if r["key"] == key)
    site = _parse(variant({key: empty}))
    found = [f for f in site.findings if f.is_error and f.path == key]
    assert found, f"{key}: {empty!r} passed"
    if row["default"] != "(required)" and row["type"].startswith(("text", "list of text")):  # the rest name a type
        (f,) = found
        assert f.message == "is empty, which is neither a value nor the default."
        assert f.fix.startswith("remove the key")


@pytest.mark.parametrize("key", [r["key"] for r in field_docs() if r["type"].startswith("list of text")])
def test_an_empty_item_of_a_list_is_refused(key):
    site = _parse(variant({key: ["  "]}))
    assert [f for f in site.findings if f.is_error and f.path == f"{key}[0]"], site.findings


def test_an_empty_env_field_says_which_variable_its_default_is():
    (f,) = at(_parse(variant({"haproxy.root_password_env": ""})).findings, "haproxy.root_password_env")
    assert f.fix == ("remove the key to use the variable TKGS_HAPROXY_ROOT_PASSWORD, or name the environment "
                     "variable that holds the secret.")


def test_a_secret_pasted_into_an_env_field_is_refused_and_never_echoed():
    site = _parse(variant({"vcenter.password_env": "Hunter2!Secret"}))
    (f,) = at(site.findings, "vcenter.password_env")
    assert "not an environment variable name" in f.message
    assert "Hunter2" not in str(f)


@pytest.mark.parametrize("dotted, value, words", [
    ("site", "../../escape", "cannot name a run folder"),
    ("vcenter.server", "vc..test.corp", "not a valid host name"),
    ("vcenter.thumbprint", "nothex", "expected a SHA-256 fingerprint"),
    ("vcenter.server", "https://vcenter.test.corp/ui", "is a URL"),
    ("vcenter.datastores", ["vsanDatastore, nfs01"], "several datastores in one value"),
    ("vcenter.thumbprint", "AB" * 20, "SHA-1"),
    ("content_libraries.haproxy.name", "tanzu vmware", "also the subscribed library's name"),
    ("content_libraries.kubernetes.subscription_url", "https://me:s3cret@wp.example/lib.json", "holds credentials"),
    ("content_libraries.kubernetes.subscription_url", "http://wp.example/lib.json", "https URL"),
    ("content_libraries.haproxy.ova", "https://cdn.example/haproxy-v0.1.10.ova", "URL is not supported"),
])
def test_site_rules_beyond_addresses(dotted, value, words):
    site = _parse(variant({dotted: value}))
    assert [f for f in site.findings if f.is_error and words in f.message], site.findings


def test_tls_settings_are_checked_before_any_connection():
    both = _parse(variant({"vcenter.ca_file": "ca.pem", "vcenter.thumbprint": "AB" * 32}))
    assert at(both.findings, "vcenter.thumbprint")
    loud = _parse(variant({"vcenter.insecure": True}))
    (w,) = at(loud.findings, "vcenter.insecure", "warning")
    assert "OFF" in w.message
    contradictory = _parse(variant({"vcenter.insecure": True, "vcenter.thumbprint": "AB" * 32}))
    assert at(contradictory.findings, "vcenter.insecure")


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8)


def _dotted_keys(node, prefix=""):
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path
        if isinstance(value, dict):
            yield from _dotted_keys(value, path)


_KEYS = sorted(_dotted_keys(variant()))


@given(st.dictionaries(st.sampled_from(_KEYS), _values, min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_no_value_anywhere_makes_validation_crash(changes):
    """Whatever a person writes at any key, validation answers with findings or a SiteError."""
    from tkgs_lib.site.layout import network_layout

    try:
        data = variant(changes)
    except (TypeError, AttributeError):  # a parent key was replaced by a scalar: nothing to set below it
        return
    try:
        network_layout(parse_site(yaml.safe_dump(data)))
    except SiteError:
        pass


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_no_text_makes_loading_crash(text):
    from tkgs_lib.site.layout import network_layout

    try:
        network_layout(parse_site(text))
    except SiteError:
        pass


def test_a_list_as_a_key_is_a_site_error():
    with pytest.raises(SiteError, match="a key must be a plain name"):
        parse_site("? [a, b]\n: 1\n")


def test_merge_keys_let_sites_share_blocks():
    text = EXAMPLE_SITE.read_text().replace(
        "  management:\n    vlan: 26\n    portgroup: tkgs-management\n",
        "  management:\n    <<: {vlan: 26, portgroup: tkgs-management}\n")
    site = parse_site(text)
    assert site.findings == []
    assert (site.networks.management.vlan, site.networks.management.portgroup) == (26, "tkgs-management")


def test_the_fingerprint_as_openssl_prints_it_is_accepted():
    fingerprint = ":".join(["AB"] * 32)
    for written in (fingerprint, f"sha256 Fingerprint={fingerprint}", fingerprint.replace(":", " ")):
        site = _parse(variant({"vcenter.thumbprint": written}))
        assert site.findings == [], (written, site.findings)


@pytest.mark.parametrize("changes, path, words", [
    ({"networks.management.vlan": 99999999999999}, "networks.management.vlan", "VLAN 99999999999999 is out of range"),
    ({"vcenter.port": 10**20}, "vcenter.port", "is out of range"),
    ({"haproxy.boot_timeout": 10**12}, "haproxy.boot_timeout", "out of range: at most a day"),
    ({"site": "a" * 64}, "site", "is 64 characters long; a site name has at most 63"),
    ({"vcenter.server": "::1"}, "vcenter.server", "is an IPv6 address, which tkgs-runbook does not support"),
])
def test_what_is_wrong_is_said_as_it_is(changes, path, words):
    """A huge number is a whole number out of range, a long name too long, IPv6 unsupported: said so."""
    import yaml

    from helpers import variant
    from tkgs_lib.site import parse_site
    from tkgs_lib.site.layout import network_layout

    findings = [f for f in network_layout(parse_site(yaml.safe_dump(variant(changes)))).findings if f.is_error]
    assert [f.path for f in findings] == [path] and words in findings[0].message


def test_a_huge_file_and_a_fifo_are_refused_before_they_are_read(tmp_path):
    import os

    from tkgs_lib.errors import SiteError
    from tkgs_lib.site import load_site

    huge = tmp_path / "huge.yaml"
    huge.write_text("site: lab01\n# " + "x" * (50 * 1024 * 1024) + "\n")
    with pytest.raises(SiteError, match=r"is 51,200 KiB; a site file is at most 256 KiB"):
        load_site(huge)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SiteError, match="is not a regular file"):
        load_site(fifo)  # would hang for ever on a read


def test_vsphere_name_limits_and_the_ca_file_are_checked_at_the_desk(tmp_path):
    import yaml

    from helpers import variant
    from tkgs_lib.site import parse_site

    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate\n")
    site = parse_site(yaml.safe_dump(variant({"networks.workload.portgroup": "p" * 5_000_000,
                                              "haproxy.vm_name": "v" * 81, "vcenter.ca_file": str(not_pem)})),
                      source=tmp_path / "site.yaml")
    errors = {f.path: f.message for f in site.findings if f.is_error}
    assert errors["networks.workload.portgroup"] == ("is 5,000,000 characters long; vSphere names an object with at "
                                                     "most 80.")
    assert "at most 80" in errors["haproxy.vm_name"]
    assert "is not a PEM bundle of CA certificates" in errors["vcenter.ca_file"]
    missing = parse_site(yaml.safe_dump(variant({"vcenter.ca_file": "nope.pem"})), source=tmp_path / "site.yaml")
    assert [f.message for f in missing.findings if f.path == "vcenter.ca_file"] == [f"{tmp_path / 'nope.pem'} does not exist."]
    long_names = parse_site(yaml.safe_dump(variant({
        "storage.policy": "p" * 81, "storage.tag": "t" * 257, "storage.tag_category": "c" * 256,
        "content_libraries.haproxy.item": "i" * 10_000, "vcenter.datacenter": "d" * 81})), source=tmp_path / "s.yaml")
    named = {f.path: f.message for f in long_names.findings if f.is_error}
    assert named["storage.policy"] == "is 81 characters long; vSphere names a storage policy with at most 80."
    assert named["storage.tag"] == ("is 257 characters long; vCenter documents no limit here, but tkgs-runbook takes "
                                     "at most 256.")
    assert "content_libraries.haproxy.item" in named and "vcenter.datacenter" in named
    assert "storage.tag_category" not in named  # 256 is still a name

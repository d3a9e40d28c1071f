"""Loading the site file: strict keys, no secrets, typed values, paths relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from helpers import EXAMPLE_SITE, at, variant
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
    ("site: [unclosed", "not valid YAML at line 1"),
    ("- a\n- b\n", "must be a YAML mapping"),
    ("", "this one is empty"),
])
def test_a_file_that_is_not_a_yaml_mapping_is_a_site_error(text, words):
    with pytest.raises(SiteError, match=words):
        parse_site(text)


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

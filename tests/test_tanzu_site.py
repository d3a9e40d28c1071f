"""The namespace and tanzu_cluster blocks checked at the desk (issue 26): each finding names the field at
fault, says what is wrong and what to write; the article's site with its two blocks is clean."""

from __future__ import annotations

import pytest

from helpers import at, findings_for
from tkgs_lib.site import parse_site
from tkgs_lib.site.tanzu import api_at_least, cluster_storage_class, storage_class_of, version_findings

NS, TKC = "namespace", "tanzu_cluster"


def test_the_articles_site_with_a_namespace_and_a_cluster_is_clean():
    assert [f for f in findings_for() if f.is_error] == []


@pytest.mark.parametrize("path,value,said", [
    (f"{NS}.name", "Tkgs_Demo", "not a DNS label"),
    (f"{NS}.name", "a" * 64, "at most 63"),
    (f"{TKC}.name", "tkc.01", "not a DNS label"),
    (f"{NS}.vm_classes", ["Best Effort"], "not a DNS label"),
])
def test_names_are_dns_labels(path, value, said):
    found = [f for f in findings_for({path: value}) if f.is_error and f.path.startswith(path)]
    assert found and said in found[0].message, found


def test_a_roles_and_subjects_fields_are_checked():
    findings = findings_for({f"{NS}.access": [{"subject": "administrator@vsphere.local", "domain": "vsphere.local"},
                                              {"subject": "devops", "subject_type": "GROUP", "role": "ADMIN"}]})
    assert "its domain goes in domain" in at(findings, f"{NS}.access[0].subject")[0].message
    assert at(findings, f"{NS}.access[1].role"), findings  # not EDIT, VIEW or OWNER
    twice = findings_for({f"{NS}.access": [{"subject": "a"}, {"subject": "A", "role": "VIEW"}]})
    assert "given a role twice" in at(twice, f"{NS}.access[1]")[0].message
    assert "required but empty" in at(findings_for({f"{NS}.access": []}), f"{NS}.access")[0].message


def test_the_roles_and_fields_vcenters_version_allows():
    site = parse_site(_yaml({f"{NS}.access": [{"subject": "administrator", "role": "OWNER"}]}))
    old = version_findings(site, "7.0.1.0")
    assert [f.path for f in old] == [f"{NS}.access[0].role", f"{NS}.vm_classes"]
    assert "7.0.2.00100" in old[0].message and "this vCenter's API is 7.0.1.0" in old[0].message
    assert version_findings(site, "7.0.2.00100") == version_findings(site, "7.0.3.0") == []
    assert api_at_least("7.0.3.0", "7.0.2.00100") and not api_at_least("7.0.2.00000", "7.0.2.00100")


@pytest.mark.parametrize("key", ["pods_cidr", "services_cidr"])
@pytest.mark.parametrize("value,collides", [
    ("10.64.0.0/16", "the frontend network 10.64.0.0/23"),
    ("10.96.0.0/12", "the Supervisor's services 10.96.0.0/23"),
    ("10.64.2.16/28", "the Supervisor's addresses 10.64.2.20-10.64.2.24"),
    ("10.64.2.1/32", "the DNS server 10.64.2.1 (workload_management.dns_servers[0])"),
])
def test_the_clusters_networks_stay_clear_of_the_site(key, value, collides):
    found = at(findings_for({f"{TKC}.{key}": value}), f"{TKC}.{key}")
    assert found and collides in found[0].message, found
    assert "route those addresses into the cluster" in found[0].message


def test_the_api_defaults_collide_with_a_192_168_site():
    findings = findings_for({"networks.workload.cidr": "192.168.8.0/21", "networks.workload.gateway": "192.168.8.1",
                             "networks.workload.ranges": ["192.168.8.50-192.168.15.150"],
                             "haproxy.workload_ip": "192.168.8.10/21"}, remove=(f"{TKC}.pods_cidr",))
    assert "the workload network 192.168.8.0/21" in at(findings, f"{TKC}.pods_cidr")[0].message


def test_ntp_and_vcenter_are_kept_clear_and_the_two_networks_apart():
    findings = findings_for({"workload_management.ntp_servers": ["172.24.9.9"], "vcenter.server": "10.112.0.5"})
    assert "the NTP server 172.24.9.9" in at(findings, f"{TKC}.pods_cidr")[0].message
    assert "vCenter 10.112.0.5" in at(findings, f"{TKC}.services_cidr")[0].message
    apart = findings_for({f"{TKC}.services_cidr": "172.24.128.0/17"})
    assert "overlaps the pods' 172.24.0.0/16" in at(apart, f"{TKC}.services_cidr")[0].message
    assert "host bits" in at(findings_for({f"{TKC}.pods_cidr": "172.24.0.1/16"}), f"{TKC}.pods_cidr")[0].message


def test_the_clusters_classes_are_bound_to_the_namespace():
    found = at(findings_for({f"{TKC}.worker_class": "guaranteed-large"}), f"{TKC}.worker_class")
    assert "not bound to the namespace" in found[0].message and "best-effort-small" in found[0].fix


def test_the_storage_class_is_the_policy_the_namespace_holds():
    assert storage_class_of("Tanzu Storage Policy") == "tanzu-storage-policy"
    found = at(findings_for({f"{TKC}.storage_class": "gold"}), f"{TKC}.storage_class")
    assert "'Tanzu Storage Policy' (storage.policy)" in found[0].message and found[0].suggested == (
        "tanzu-storage-policy",)
    assert cluster_storage_class(parse_site(_yaml({}))) == "tanzu-storage-policy"


def test_counts_and_the_blocks_they_need():
    assert at(findings_for({f"{TKC}.control_plane_count": 2}), f"{TKC}.control_plane_count")[0].suggested == ("1",)
    assert at(findings_for({f"{TKC}.worker_count": 0}), f"{TKC}.worker_count")
    assert at(findings_for(remove=(NS,)), TKC)[0].message.startswith("a Tanzu Kubernetes cluster lives in a namespace")
    assert at(findings_for(remove=("workload_management",)), NS)


def _yaml(changes: dict) -> str:
    import yaml

    from helpers import variant

    return yaml.safe_dump(variant(changes))

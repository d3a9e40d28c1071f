"""The stand-in's typed decode of an EnableSpec body, proved on bodies VMware's own bindings and
runtime serialize (built in Python, serialized, decoded, compared) and on broken ones."""

from __future__ import annotations

import json

import pytest
from com.vmware.vcenter.namespace_management_client import (CNSFileConfig, Clusters, IPRange, Ipv4Cidr,
                                                             LoadBalancers, Networks, ProxyConfiguration,
                                                             ProxySettingsSource, SizingHint)
from hypothesis import given, settings
from hypothesis import strategies as st
from vmware.vapi.bindings import type as vapi_type
from vmware.vapi.bindings.converter import RestConverter, TypeConverter
from vmware.vapi.data.serializers.cleanjson import DataValueConverter

from tkgs_simulators.namespace_management.spec import (INVALID_ARGUMENT, UNEXPECTED_INPUT, SpecRejected, decode,
                                                           decode_enable_spec)

ENABLE_SPEC = Clusters.EnableSpec.get_binding_type()


def serialized(spec: Clusters.EnableSpec) -> str:
    """The body VMware's runtime writes for ``spec`` under /api."""
    return DataValueConverter.convert_to_json(TypeConverter.convert_to_vapi(spec, ENABLE_SPEC,
                                                                            RestConverter.SWAGGER_REST))


def haproxy_spec(**changes) -> Clusters.EnableSpec:
    """The article's Supervisor with the HAProxy load balancer, as a client builds it."""
    values = dict(
        size_hint=SizingHint.TINY,
        service_cidr=Ipv4Cidr(address="10.96.0.0", prefix=23),
        network_provider=Clusters.NetworkProvider.VSPHERE_NETWORK,
        workload_networks_spec=Clusters.WorkloadNetworksEnableSpec(
            supervisor_primary_workload_network=Networks.CreateSpec(
                network="primary-workload", network_provider=Clusters.NetworkProvider.VSPHERE_NETWORK,
                vsphere_network=Networks.VsphereDVPGNetworkCreateSpec(
                    portgroup="dvportgroup-22", address_ranges=[IPRange(address="10.64.4.10", count=200)],
                    gateway="10.64.4.1", subnet_mask="255.255.252.0"))),
        load_balancer_config_spec=LoadBalancers.ConfigSpec(
            id="haproxy-lb", provider=LoadBalancers.Provider.HA_PROXY,
            address_ranges=[IPRange(address="10.64.1.0", count=64), IPRange(address="10.64.1.128", count=32)],
            ha_proxy_config_create_spec=LoadBalancers.HAProxyConfigCreateSpec(
                servers=[LoadBalancers.Server(host="10.64.2.10", port=5556)], username="admin",
                password="canary-dataplane-pw", certificate_authority_chain="-----BEGIN CERTIFICATE-----\n...")),
        master_management_network=Clusters.NetworkSpec(
            mode=Clusters.NetworkSpec.Ipv4Mode.STATICRANGE, network="dvportgroup-21",
            address_range=Clusters.Ipv4Range(starting_address="10.64.2.20", address_count=5,
                                             subnet_mask="255.255.254.0", gateway="10.64.2.1")),
        master_dns=["10.64.2.2"], worker_dns=["10.64.2.3", "10.64.2.4"], master_ntp_servers=["pool.ntp.org"],
        master_dns_search_domains=["lab.local"], master_dns_names=["supervisor.lab.local"],
        master_storage_policy="aa6d5a82-1c88-45da-85d3-3d74b91a5bad",
        ephemeral_storage_policy="aa6d5a82-1c88-45da-85d3-3d74b91a5bad",
        image_storage=Clusters.ImageStorageSpec(storage_policy="aa6d5a82-1c88-45da-85d3-3d74b91a5bad"),
        default_kubernetes_service_content_library="2c0f4c3c-7e61-4b2c-8d2b-2f8a7c8a1d11")
    values.update(changes)
    return Clusters.EnableSpec(**values)


def refusals(body) -> SpecRejected:
    with pytest.raises(SpecRejected) as caught:
        decode_enable_spec(body if isinstance(body, (str, bytes)) else json.dumps(body))
    return caught.value


# --- round trips -------------------------------------------------------------------------------

def test_a_body_the_bindings_serialize_decodes_to_the_very_spec_with_the_wire_names():
    spec = haproxy_spec()
    body = serialized(spec)
    wire = json.loads(body)
    # The names on the wire are VMware's, not the Python ones.
    assert {"master_DNS", "worker_DNS", "master_NTP_servers", "master_DNS_search_domains",
            "Master_DNS_names"} <= set(wire)
    assert "master_dns" not in wire
    decoded = decode_enable_spec(body)
    assert isinstance(decoded, Clusters.EnableSpec)
    assert decoded == spec and spec == decoded
    assert decoded.master_dns_names == ["supervisor.lab.local"]
    assert decoded.size_hint is SizingHint.TINY  # the bindings' own enumeration value
    assert decoded.load_balancer_config_spec.ha_proxy_config_create_spec.password == "canary-dataplane-pw"
    assert "canary-dataplane-pw" not in repr(decoded) + str(decoded)  # the bindings print every field


def test_every_optional_part_round_trips_and_unset_ones_stay_unset():
    spec = haproxy_spec(
        workload_ntp_servers=["10.64.4.2"], login_banner="Authorised use only.\nÜnïcödé too.",
        cns_file_config=CNSFileConfig(vsan_clusters=["domain-c8"]),
        default_image_registry=Clusters.ImageRegistry(hostname="registry.lab.local", port=443),
        default_image_repository="tanzu", count=3, enable_namespace_api_fairness=True,
        cluster_proxy_config=ProxyConfiguration(proxy_settings_source=ProxySettingsSource.CLUSTER_CONFIGURED,
                                                https_proxy_config="http://proxy.lab.local:3128",
                                                no_proxy_config=["10.0.0.0/8", ".lab.local"]),
        content_libraries=[Clusters.ContentLibrarySpec(
            content_library="lib-1", resource_naming_strategy=Clusters.ResourceNamingStrategy.FROM_ITEM_ID)])
    assert decode_enable_spec(serialized(spec)) == spec
    minimal = haproxy_spec(master_dns=None, worker_dns=None, master_ntp_servers=None, master_dns_search_domains=None,
                           master_dns_names=None, default_kubernetes_service_content_library=None)
    decoded = decode_enable_spec(serialized(minimal))
    assert decoded == minimal and decoded.master_dns is None and decoded.count is None


names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)


@settings(max_examples=60, deadline=None)
@given(dns=st.lists(names, max_size=3), count=st.integers(-(2 ** 63), 2 ** 63 - 1),
       port=st.integers(1, 65535), banner=st.none() | names, lb_id=names,
       ranges=st.lists(st.tuples(names, st.integers(0, 2 ** 31)), min_size=1, max_size=3))
def test_whatever_values_the_bindings_serialize_come_back_equal(dns, count, port, banner, lb_id, ranges):
    balancer = LoadBalancers.ConfigSpec(
        id=lb_id, provider=LoadBalancers.Provider.HA_PROXY,
        address_ranges=[IPRange(address=a, count=c) for a, c in ranges],
        ha_proxy_config_create_spec=LoadBalancers.HAProxyConfigCreateSpec(
            servers=[LoadBalancers.Server(host="10.64.2.10", port=port)], username=lb_id, password=banner or "pw",
            certificate_authority_chain=lb_id))
    spec = haproxy_spec(master_dns=dns or None, count=count, login_banner=banner, load_balancer_config_spec=balancer)
    assert decode_enable_spec(serialized(spec)) == spec


# --- refusals, as the types refuse -------------------------------------------------------------

def test_a_missing_required_field_is_refused_where_it_is_missing():
    body = json.loads(serialized(haproxy_spec()))
    del body["image_storage"]
    del body["load_balancer_config_spec"]["ha_proxy_config_create_spec"]["servers"][0]["port"]
    rejected = refusals(body)
    assert rejected.error_type == INVALID_ARGUMENT
    found = {(r.path, r.message.id) for r in rejected.refusals}
    assert found == {("image_storage", "vapi.data.structure.field.missing"),
                     ("load_balancer_config_spec.ha_proxy_config_create_spec.servers[0].port",
                      "vapi.data.structure.field.missing")}
    assert any('is missing a field "port"' in r.sentence for r in rejected.refusals)


def test_null_for_a_required_field_is_refused_and_for_an_optional_one_means_unset():
    body = json.loads(serialized(haproxy_spec()))
    body["master_storage_policy"] = None
    body["master_DNS"] = None
    rejected = refusals(body)
    assert [(r.path, r.message.id) for r in rejected.refusals] == [
        ("master_storage_policy", "vapi.data.structure.setfield.null")]
    body["master_storage_policy"] = "aa6d5a82-1c88-45da-85d3-3d74b91a5bad"
    assert decode_enable_spec(json.dumps(body)).master_dns is None


def test_an_enumeration_value_the_type_does_not_list_is_refused_naming_the_values_it_does():
    body = json.loads(serialized(haproxy_spec()))
    body["size_hint"] = "HUGE"
    body["load_balancer_config_spec"]["provider"] = "haproxy"  # the case matters
    rejected = refusals(body)
    by_path = {r.path: r for r in rejected.refusals}
    assert set(by_path) == {"size_hint", "load_balancer_config_spec.provider"}
    assert "one of TINY, SMALL, MEDIUM, LARGE" in by_path["size_hint"].sentence
    assert "'HUGE'" in by_path["size_hint"].sentence
    assert "one of HA_PROXY, AVI" in by_path["load_balancer_config_spec.provider"].sentence


@pytest.mark.parametrize("path, value, expected, got", [
    (("service_cidr", "prefix"), "23", "integer", "string"),
    (("service_cidr", "prefix"), 23.0, "integer", "number"),
    (("service_cidr", "prefix"), True, "integer", "boolean"),
    (("master_DNS",), "10.64.2.2", "list (array)", "string"),
    (("master_DNS", 0), 10, "string", "number"),
    (("load_balancer_config_spec", "ha_proxy_config_create_spec", "password"), 1234, "secret (string)", "number"),
    (("master_management_network", "network"), {"id": "dvportgroup-21"}, "id (string)", "object"),
    (("image_storage",), "aa6d5a82", "com.vmware.vcenter.namespace_management.clusters.image_storage_spec",
     "string"),
])
def test_a_value_of_the_wrong_type_is_refused(path, value, expected, got):
    body = json.loads(serialized(haproxy_spec()))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    rejected = refusals(body)
    where = ".".join(k for k in path if isinstance(k, str)) + "".join(f"[{k}]" for k in path if isinstance(k, int))
    assert [(r.path, r.message.id) for r in rejected.refusals] == [(where, "vapi.data.validate.mismatch")]
    assert rejected.refusals[0].sentence.endswith(f"expected an object of type {expected}, but got {got}")
    assert "1234" not in str(rejected)  # a secret's value is never repeated


def test_an_integer_beyond_64_bits_is_refused():
    body = json.loads(serialized(haproxy_spec()))
    body["count"] = 2 ** 63
    assert [r.path for r in refusals(body).refusals] == ["count"]


def test_an_unknown_field_with_a_value_is_unexpected_input_and_a_null_one_is_ignored():
    body = json.loads(serialized(haproxy_spec()))
    body["master_dns"] = ["10.64.2.2"]  # the Python name, not the wire name
    body["load_balancer_config_spec"]["ha_proxy_config_create_spec"]["servers"][0]["tls"] = True
    rejected = refusals(body)
    assert rejected.error_type == UNEXPECTED_INPUT
    assert {r.path for r in rejected.refusals} == {
        "master_dns", "load_balancer_config_spec.ha_proxy_config_create_spec.servers[0].tls"}
    assert all(r.message.id == "vapi.data.structure.field.unexpected" for r in rejected.refusals)
    body = json.loads(serialized(haproxy_spec()))
    body["added_in_a_later_release"] = None
    assert decode_enable_spec(json.dumps(body)) == haproxy_spec()


def test_the_unions_of_the_bindings_are_kept():
    body = json.loads(serialized(haproxy_spec()))
    del body["master_management_network"]["address_range"]  # STATICRANGE needs one
    body["ncp_cluster_network_spec"] = {"pod_cidrs": [], "ingress_cidrs": [], "egress_cidrs": []}  # NSX's, not ours
    found = {(r.path, r.message.id) for r in refusals(body).refusals}
    assert found == {("master_management_network", "vapi.data.structure.union.missing"),
                     ("", "vapi.data.structure.union.extra")}


def test_many_problems_are_all_reported_at_once():
    body = json.loads(serialized(haproxy_spec()))
    body.update(size_hint="HUGE", master_DNS=[1, 2], surprise=1)
    del body["service_cidr"]
    assert len(refusals(body).refusals) == 5


@pytest.mark.parametrize("body, words", [
    ("", "has no body"),
    ("   ", "has no body"),
    ("{", "is not JSON"),
    ('{"size_hint": NaN}', "is not JSON"),
    (b"\xff\xfe\xfd", "is not JSON"),
    ("[]", "but got array"),
    ("null", "but got null"),
])
def test_a_body_that_is_not_an_object_is_refused(body, words):
    rejected = refusals(body)
    assert rejected.error_type == INVALID_ARGUMENT and words in str(rejected)


# --- the rest of the bindings' types ----------------------------------------------------------

def test_date_times_uris_blobs_sets_and_maps_decode_as_the_bindings_hold_them():
    import datetime

    when = decode(vapi_type.DateTimeType(), "2026-11-26T10:00:00.000Z")
    assert when == datetime.datetime(2026, 11, 26, 10, 0)
    assert decode(vapi_type.URIType(), "https://wp-content.vmware.com/v2/latest/lib.json").startswith("https://")
    assert decode(vapi_type.BlobType(), "aGVsbG8=") == b"hello"
    assert decode(vapi_type.SetType(vapi_type.StringType()), ["a", "b"]) == {"a", "b"}
    assert decode(vapi_type.MapType(vapi_type.StringType(), vapi_type.IntegerType()), {"a": 1}) == {"a": 1}
    for typ, value, words in [
            (vapi_type.DateTimeType(), "yesterday", "does not match expected pattern"),
            (vapi_type.URIType(), "http://exa mple/", "Invalid URI format"),
            (vapi_type.BlobType(), "not base64!", "not base64"),
            (vapi_type.SetType(vapi_type.StringType()), ["a", "a"], "duplicate element"),
            (vapi_type.MapType(vapi_type.StringType(), vapi_type.IntegerType()), {"a": "1"}, "type integer")]:
        with pytest.raises(SpecRejected) as caught:
            decode(typ, value)
        assert words in str(caught.value), (typ, str(caught.value))

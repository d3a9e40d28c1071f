"""Property-based tests for range and CIDR conversion (hypothesis)."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from netaddr import IPAddress, IPNetwork

from tkgs_lib.site.network import range_to_cidrs, smallest_enclosing_cidr

addresses = st.integers(min_value=0, max_value=2**32 - 1)


@st.composite
def ranges(draw):
    a, b = draw(addresses), draw(addresses)
    return min(a, b), max(a, b)


@given(ranges())
@settings(max_examples=300)
def test_exact_blocks_cover_the_range_with_no_gap_or_overlap(bounds):
    first, last = bounds
    blocks = range_to_cidrs(IPAddress(first), IPAddress(last))
    assert blocks[0].first == first and blocks[-1].last == last
    for a, b in zip(blocks, blocks[1:]):
        assert a.last + 1 == b.first  # contiguous, disjoint, in order
    assert all(b.ip == b.network for b in blocks)  # every block is a proper network
    assert len(blocks) <= 62  # at most two per prefix length: logarithmic, never per address


@given(ranges())
@settings(max_examples=300)
def test_smallest_enclosing_block_holds_the_range_and_no_smaller_one_does(bounds):
    first, last = bounds
    block = smallest_enclosing_cidr(IPAddress(first), IPAddress(last))
    assert block.first <= first and last <= block.last
    if block.prefixlen < 32:
        smaller = IPNetwork(f"{IPAddress(first)}/{block.prefixlen + 1}").cidr
        assert not (smaller.first <= first and last <= smaller.last)


@given(addresses, st.integers(min_value=0, max_value=32))
def test_a_cidr_block_is_exactly_one_block(start, prefix):
    net = IPNetwork(f"{IPAddress(start)}/{prefix}").cidr
    assert range_to_cidrs(IPAddress(net.first), IPAddress(net.last)) == [net]
    assert smallest_enclosing_cidr(IPAddress(net.first), IPAddress(net.last)) == net


@given(st.integers(min_value=24, max_value=32), st.data())
@settings(max_examples=100, deadline=None)
def test_the_validator_accepts_any_free_block_of_the_frontend_network(prefix, data):
    """Any block of 10.64.1.0/24 (clear of the gateway and appliance in 10.64.0.0/24) is not an error."""
    from helpers import findings_for

    offset = data.draw(st.integers(min_value=0, max_value=2 ** (32 - 24) - 1))
    block = IPNetwork(f"10.64.1.{offset}/{prefix}").cidr
    findings = findings_for({"haproxy.load_balancer_ranges": [str(block)]})
    assert [f for f in findings if f.is_error and not f.path.startswith("workload_management")] == []
    # The Supervisor's default virtual IPs are the block less the frontend network's broadcast address
    # (10.64.1.255): a block of that address alone leaves none, which is an error there, and only then.
    supervisor = [f.path for f in findings if f.is_error and f.path.startswith("workload_management")]
    assert supervisor == (["workload_management.virtual_ip_ranges"] if str(block) == "10.64.1.255/32" else [])


@given(ranges())
@settings(max_examples=100, deadline=None)
def test_the_validator_lists_exactly_the_blocks_of_a_first_last_range(bounds):
    from helpers import at, findings_for

    first, last = IPAddress(bounds[0]), IPAddress(bounds[1])
    (f, *_) = at(findings_for({"haproxy.load_balancer_ranges": [f"{first}-{last}"]}), "haproxy.load_balancer_ranges[0]")
    blocks = tuple(map(str, range_to_cidrs(first, last)))
    if len(blocks) > 1:
        assert ", ".join(blocks) in f.message
    # the blocks are the fix, unless the plan refuses them there (outside the frontend network...)
    others = at(findings_for({"haproxy.load_balancer_ranges": [f"{first}-{last}"]}), "haproxy.load_balancer_ranges[0]",
                "error")
    assert f.suggested == (blocks if len(others) == 1 else ())
    assert f.fix == (f"write {blocks[0]}." if len(blocks) == 1 else
                     f"write those blocks as separate ranges: {', '.join(blocks)}.") if f.suggested else \
        not re.search(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+", f.fix)  # withdrawn: no address in the words


@given(addresses, st.integers(min_value=0, max_value=32))
@settings(max_examples=300)
def test_the_parser_flags_host_bits_exactly_when_the_address_is_not_the_network(start, prefix):
    from tkgs_lib.site.network import _Parser

    findings = []
    text = f"{IPAddress(start)}/{prefix}"
    net = _Parser(findings).network("x", text)
    expected = IPNetwork(text).cidr
    assert net == expected  # host bits or not, later rules see the network
    host_bits = [f for f in findings if "host bits" in f.message]
    assert bool(host_bits) == (IPAddress(start) != expected.network)
    if host_bits:
        assert host_bits[0].fix.startswith(f"write {expected} ")
    else:
        assert findings == [] and str(net) == text  # plain text round-trips


@given(ranges())
@settings(max_examples=300)
def test_the_parser_reads_first_last_as_written(bounds):
    from tkgs_lib.site.network import _Parser

    findings = []
    first, last = IPAddress(bounds[0]), IPAddress(bounds[1])
    block = _Parser(findings).first_last("x", f"{first}-{last}")
    assert findings == [] and (block.first, block.last) == bounds
    reversed_findings = []
    if first != last:  # the plan goes on with it turned round, as the fix says to write it
        turned = _Parser(reversed_findings).first_last("x", f"{last}-{first}")
        assert (turned.first, turned.last) == bounds
        assert reversed_findings[0].fix == f"write {first}-{last}." and reversed_findings[0].suggested == (
            f"{first}-{last}",)

"""The appliance's CA chain as the enable stage checks it before a request carries it: PEM certificates
only, each a CA, and the one a TLS server's certificate is signed by (a real handshake on loopback)."""

from __future__ import annotations

import socket
import ssl

import pytest

from test_ssh_connect import loopback_server
from tkgs_lib.appliance.ca import CaCertificate
from tkgs_lib.appliance.dataplane import signed_by
from tkgs_lib.errors import ApplianceError
from tkgs_simulators.appliance.dataplane_server import issue_server_cert, load_cert_chain, make_ca


def test_a_chain_of_cas_is_read_whole_and_a_certificate_in_it_that_is_no_ca_is_named():
    (one, key), (two, _) = make_ca("root-one"), make_ca("root-two")
    chain = CaCertificate.chain_from_pem(one + two, "the chain")
    assert [c.subject.split("CN=")[1] for c in chain] == ["root-one", "root-two"]
    assert chain[0].pem == one and chain[1].pem == two
    leaf = issue_server_cert(one, key, "haproxy.local")[0]
    with pytest.raises(ApplianceError, match=r"^the chain \(certificate 2 of 2\) is a certificate for "
                                             r"CN=haproxy\.local, but not a CA"):
        CaCertificate.chain_from_pem(one + leaf, "the chain")


def test_a_certificate_whose_base64_was_cut_is_named_as_such():
    ca, _ = make_ca("haproxy.local")
    lines = ca.splitlines()
    cut = "\n".join(lines[:3] + lines[-1:]) + "\n"
    with pytest.raises(ApplianceError, match=r"^the chain has a '-----BEGIN CERTIFICATE-----' block that is not a "
                                             r"certificate: it was cut short or altered when it was copied\.$"):
        CaCertificate.chain_from_pem(cut, "the chain")


@pytest.fixture
def tls_server():
    """A TLS server on loopback whose certificate the CA returned signed; (port, CA PEM)."""
    ca, key = make_ca("appliance-ca")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_cert_chain(context, *issue_server_cert(ca, key, "haproxy.local", ip_addresses=["127.0.0.1"]))

    def handshake(conn: socket.socket) -> None:
        try:
            context.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            pass  # the client refused the certificate

    port, stop = loopback_server(handshake)
    yield port, ca
    stop()


def test_signed_by_tells_the_ca_that_signed_from_one_that_did_not(tls_server):
    port, ca = tls_server
    assert signed_by("127.0.0.1", port, ca, trusted_by="the right CA") == ""
    with pytest.raises(ApplianceError, match=rf"^the Data Plane API at 127\.0\.0\.1:{port} presents a certificate not "
                                             r"signed by the pasted CA \(unable to get local issuer certificate\): "
                                             r"the CA is not this appliance's"):
        signed_by("127.0.0.1", port, make_ca("another")[0], trusted_by="the pasted CA")


def test_signed_by_says_why_it_could_not_tell_when_nothing_answers():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: refused
        assert signed_by("127.0.0.1", port, make_ca("any")[0], trusted_by="the CA") == (
            f"no TLS handshake with 127.0.0.1:{port} (Connection refused)")

"""The simulated appliance's haproxy.cfg and the Data Plane API's checks of it, against Debian's
real ``haproxy -c`` (no appliance, no root): the release's head with the API's sections is a
configuration HAProxy accepts; what HAProxy refuses is worded as Data Plane API 2.1.0 words it;
a body is validated as the API validates it; the userlist's hash is first boot's."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tkgs_simulators.appliance.dataplane_configuration import check_error_message
from tkgs_simulators.appliance.haproxy_config import (
    Invalid, NotSimulated, Sections, head, md5_crypt, md5_crypt_matches, render, validate)


def require(tool: str, package: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{tool} is missing on CI: apt-get install {package}", pytrace=False)
        pytest.skip(f"{tool} is missing: apt-get install {package}")


def haproxy_check(path) -> subprocess.CompletedProcess:
    require("haproxy", "haproxy")
    return subprocess.run(["haproxy", "-W", "-f", str(path), "-c"], capture_output=True, text=True)


def balanced() -> Sections:
    sections = Sections()
    sections.frontends["cp"] = validate("frontend", {"name": "cp", "mode": "tcp", "default_backend": "cp"})
    sections.binds["cp"] = {p: validate("bind", {"name": f"cp-{p}", "address": "127.0.0.1", "port": p})
                            for p in (16443, 10443)}
    sections.backends["cp"] = validate("backend", {"name": "cp", "mode": "tcp", "balance": {"algorithm": "roundrobin"}})
    sections.servers["cp"] = {n: validate("server", {"name": n, "address": f"127.0.0.{i}", "check": "enabled",
                                                     "health_check_port": 6443, "inter": 200})
                              for i, n in enumerate(("cp-1", "cp-2"), start=2)}
    return sections


def test_the_releases_head_with_the_apis_sections_is_a_configuration_haproxy_accepts(tmp_path):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(render(3, head({"admin": "$1$salt$abcdefghijklmnopqrstuv"}), balanced()))
    checked = haproxy_check(cfg)
    assert checked.returncode == 0, checked.stderr
    text = cfg.read_text()
    assert text.startswith("# _version=3\nglobal\n")
    assert "  bind 127.0.0.1:16443 name cp-16443\n" in text
    assert "  server cp-1 127.0.0.2 check port 6443 inter 200\n" in text
    assert "userlist controller\n  user admin password $1$salt$abcdefghijklmnopqrstuv\n" in text


def test_haproxys_refusals_are_worded_as_data_plane_api_2_1_0_words_them(tmp_path):
    cfg = tmp_path / "haproxy.cfg.tx-1"
    text = render(1, head({}), balanced()).replace("  balance roundrobin", "  balanc roundrobin")
    cfg.write_text(text)
    checked = haproxy_check(cfg)
    assert checked.returncode != 0
    line = text.splitlines().index("  balanc roundrobin") + 1
    # HAProxy 2.6 says "[ALERT] (pid) : config : parsing [file:N] : ..."; 2.1.0's parser, given 2.2's
    # form (no "config : "), makes the line number and message of it, the summary alerts left out.
    assert check_error_message(checked.stdout + checked.stderr, "tx-1").splitlines() == [
        "ERR transactionId=tx-1 ",
        f"line={line} msg=\"unknown keyword 'balanc' in 'backend' section; did you mean 'balance' maybe ?\""]


@pytest.mark.parametrize("kind, body, code, message", [
    ("frontend", {"mode": "tcp"}, 601, "name in body is required"),
    ("frontend", {"name": "has space"}, 604, "name in body should match '^[A-Za-z0-9-_.:]+$'"),
    ("frontend", {"name": "f", "mode": "udp"}, 605, "mode in body should be one of [http tcp]"),
    ("bind", {"name": "b", "port": 0}, 608, "port in body should be greater than or equal to 1"),
    ("bind", {"name": "b", "port": "443"}, 600, "port in body must be of type integer"),
    ("backend", {"name": "b", "balance": {}}, 601, "balance.algorithm in body is required"),
])
def test_a_body_is_validated_as_the_api_validates_it(kind, body, code, message):
    with pytest.raises(Invalid) as invalid:
        validate(kind, body)
    assert (invalid.value.code, invalid.value.message) == (code, message)


def test_a_field_the_stand_in_does_not_render_is_refused_never_dropped():
    with pytest.raises(NotSimulated, match="the bind field 'ssl_certificate'"):
        validate("bind", {"name": "b", "address": "10.64.1.10", "port": 443, "ssl_certificate": "/etc/x.pem"})
    assert validate("server", {"name": "s", "address": "10.0.0.1", "weight": None, "backup": ""}) == \
        {"name": "s", "address": "10.0.0.1"}  # unset fields, as Go's omitempty sends them


def test_the_userlist_hash_is_first_boots_md5_crypt():
    require("openssl", "openssl")
    hashed = md5_crypt("canary-dataplane-pw")
    assert hashed.startswith("$1$") and len(hashed.split("$")) == 4  # openssl passwd -1, as v0.1.10's first boot
    assert md5_crypt_matches("canary-dataplane-pw", hashed)
    assert not md5_crypt_matches("canary-dataplane-pX", hashed)
    assert md5_crypt("canary-dataplane-pw") != hashed  # a fresh salt each time

"""Build variants of the example site for tests: load its YAML, change a few keys, parse."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from tkgs_lib.site.layout import network_layout
from tkgs_lib.site import parse_site

EXAMPLE_SITE = Path(__file__).resolve().parent.parent / "examples" / "example-site.yaml"
EXAMPLE = yaml.safe_load(EXAMPLE_SITE.read_text())


def variant(changes: dict | None = None, remove: tuple[str, ...] = ()) -> dict:
    """The example as a dict with dotted keys set (``{"networks.frontend.gateway": "x"}``) or removed."""
    data = copy.deepcopy(EXAMPLE)
    for dotted, value in (changes or {}).items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    for dotted in remove:
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]
    return data


def findings_for(changes: dict | None = None, remove: tuple[str, ...] = (), source: Path | None = None):
    site = parse_site(yaml.safe_dump(variant(changes, remove)), source=source or EXAMPLE_SITE)
    return network_layout(site).findings


def at(findings, path: str, severity: str = "error"):
    """The findings at one field with one severity."""
    return [f for f in findings if f.path == path and f.severity == severity]


# Lines in /etc/shadow's format (user:hash:last change:min:max:warn:::), with made-up salts and hashes:
# YAML reads each as a key. No part of the hashes may ever be shown back.
SHADOW = ("root:$6$Zx9saltQ$Q2m3hQ7rXw0kV9yL4pN8sT1uB6cE5fG3hJ2kL7mN0pQ9rS4tU8vW1xY6zA3bC5dE7fG9hJ1kL3mN5pQ7rS9t"
          "U1vW3xY5zA7bC/:19000:0:99999:7:::\n"
          "daemon:*:19000:0:99999:7:::\n"
          "nobody:!:19000:0:99999:7:::\n"
          "admin:$y$j9T$aBcSaltXyZ12$YhAsHy0Ko4Lm2Nb6Vc8Xz1Qw3Er5Ty7Ui9Op0As2Df4:19500:0:99999:7:::\n")
SHADOW_PARTS = ("$6$", "Zx9saltQ", "Q2m3hQ7rXw0kV9yL", "xY5zA7bC", "$y$", "aBcSaltXyZ12", "YhAsHy0Ko4Lm2Nb6",
                "19000:0:99999")

"""A VM's advanced settings (``config.extraConfig``) as the vCenter simulator keeps them.

govmomi's simulator appends a key set again by ``ReconfigVM`` rather than replacing it, so the last
value of a key is its value. The vApp property values of an OVA deployed there land in the same list.
"""

from __future__ import annotations

__all__ = ["extra_config_values"]


def extra_config_values(options) -> dict[str, str]:
    """Key → value, each key's last value ("" for none)."""
    return {option.key: "" if option.value is None else str(option.value) for option in options or ()}

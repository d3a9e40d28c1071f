"""Secrets come from the environment or an interactive prompt; never from a file or a parameter."""

from __future__ import annotations

import getpass
import os

from .errors import SiteError
from .notebook import kernel_allows_input


def read_secret(env_name: str, what: str, field: str) -> str:
    """The secret in environment variable ``env_name``, else ask the person at the keyboard.

    Headless (papermill, CI) nobody can answer, so a missing variable is an error that says
    which variable to set. The value is never logged or echoed."""
    value = os.environ.get(env_name, "")
    if value:
        return value
    if kernel_allows_input():
        value = getpass.getpass(f"{what} (not stored; set {env_name} to skip this prompt): ")
        if value:
            return value
    raise SiteError(f"{what} is needed but the environment variable {env_name} (named by {field}) is not set. "
                    f"Set it before a headless run, e.g. `read -rs {env_name} && export {env_name}`.")


def secret_values(site) -> list[str]:
    """The values of every secret the site names, so they can be scrubbed from reports."""
    return [os.environ[name] for _, name in site.secret_env_fields() if name and os.environ.get(name)]

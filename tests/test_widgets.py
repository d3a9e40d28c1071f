"""The parameter form writes a person's values back into the notebook's namespace."""

from __future__ import annotations

import ipywidgets as w
import pytest

from tkgs_lib.display.widgets import parameter_form


def test_form_is_typed_from_the_parameters_and_writes_values_back():
    ns = {"__annotations__": {"site_file": str, "apply": bool, "port": int},
          "site_file": "../examples/example-site.yaml", "apply": False, "port": 5556, "stages": ["networks"]}
    form = parameter_form(ns, "site_file", "apply", "port", "stages")
    assert isinstance(form.fields["site_file"], w.Text)
    assert isinstance(form.fields["apply"], w.Checkbox)
    assert isinstance(form.fields["port"], w.IntText)
    form.fields["site_file"].value = "/sites/lab02.yaml"
    form.fields["apply"].value = True
    form.fields["port"].value = 5557
    form.fields["stages"].value = "networks, prepare"
    assert ns["site_file"] == "../examples/example-site.yaml"  # nothing changes until the button
    button = form.children[-1].children[0]
    button.click()
    assert ns["site_file"] == "/sites/lab02.yaml" and ns["apply"] is True and ns["port"] == 5557
    assert ns["stages"] == ["networks", "prepare"]
    assert "Run the cells below again" in form.children[-1].children[1].value


@pytest.mark.parametrize("name", ["root_password", "password_text", "secret_value", "api_token"])
def test_a_secret_is_never_a_widget(name):
    with pytest.raises(ValueError, match="secret"):
        parameter_form({name: "x"}, name)

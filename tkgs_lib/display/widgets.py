"""Widget forms built from a notebook's parameters cell.

A person edits the values and presses "Use these values"; the form writes them back into the
notebook's namespace and says to run the cells below again. Headless runs never wait on it:
papermill runs no callbacks, so the parameters' own values are used.
"""

from __future__ import annotations

import typing
from typing import Any, MutableMapping

import ipywidgets as w

from ..credentials import mentions_secret
from .notebook import kernel_allows_input



def _widget_for(name: str, value: Any, hint: Any) -> w.Widget:
    kind = hint if hint is not None else type(value)
    style = {"description_width": "10em"}
    layout = w.Layout(width="42em")
    if kind is bool:
        return w.Checkbox(value=bool(value), description=name, style=style, indent=False)
    if kind is int:
        return w.IntText(value=int(value), description=name, style=style, layout=layout)
    if kind is float:
        return w.FloatText(value=float(value), description=name, style=style, layout=layout)
    if typing.get_origin(kind) is list or isinstance(value, list):
        return w.Text(value=", ".join(map(str, value or [])), description=name, style=style, layout=layout,
                      placeholder="comma-separated")
    return w.Text(value="" if value is None else str(value), description=name, style=style, layout=layout)


def _read(widget: w.Widget, value: Any) -> Any:
    if isinstance(value, list):
        return [item.strip() for item in widget.value.split(",") if item.strip()]
    return widget.value


def parameter_form(namespace: MutableMapping[str, Any], *names: str) -> w.VBox:
    """A form for the named parameters, typed from the cell's annotations (or the values)."""
    hints = namespace.get("__annotations__", {})
    for name in names:
        if mentions_secret(name):  # widget state is saved in the notebook: never a secret
            raise ValueError(f"{name} looks like a secret; secrets are never parameters or widget values")
    fields = {name: _widget_for(name, namespace[name], hints.get(name)) for name in names}
    button = w.Button(description="Use these values", button_style="primary", icon="check")
    status = w.HTML()

    def use_values(_button=None) -> None:
        for name, widget in fields.items():
            namespace[name] = _read(widget, namespace[name])
        shown = ", ".join(f"{name}={namespace[name]!r}" for name in names)
        status.value = f"<b>Parameters set</b> ({shown}). Run the cells below again."

    button.on_click(use_values)
    form = w.VBox([w.HTML("<b>Parameters</b>"), *fields.values(), w.HBox([button, status])])
    form.fields = fields  # for the tests and for anyone scripting the form
    form.use_values = use_values
    return form


def show_parameter_form(namespace, *names: str) -> None:
    """When a person runs the notebook, the widget form for the named parameters; headless, nothing
    (no form, so nothing can wait on it)."""
    if not kernel_allows_input():
        return
    from IPython.display import display

    display(parameter_form(namespace, *names))

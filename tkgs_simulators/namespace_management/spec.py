"""A request body judged as vCenter judges it: decoded by VMware's own type definitions.

vCenter's ``/api`` decodes a body against its API metamodel before the operation runs. VMware's
Python runtime (``vmware-vapi-runtime``) carries that decoder only on the server side, where it
needs the metamodel, so this module walks the bindings' own definitions instead:
``Clusters.EnableSpec.get_binding_type()`` is a ``StructType`` whose fields, by their wire names
(``master_DNS``, ``Master_DNS_names``...), are ``OptionalType``, ``ListType``, ``EnumType`` (with
its values), ``StringType``, ``IntegerType`` (vAPI's 64-bit long), ``SecretType``, ``IdType``,
nested structures and so on. A body is turned into the bindings' own Python objects (an
``EnableSpec``, ready to compare with one a client built), or refused with every problem found,
each at its place in the body.

What is refused, as the types refuse it: a required field missing or null, a value of the wrong
JSON type, an enumeration value the type does not list, an integer outside 64 bits, a malformed
date-time, URI or base64 blob, a duplicate in a set, and the structures' union rules (the
bindings' own ``UnionValidator``: ``mode: STATICRANGE`` needs an ``address_range``...). An
unknown field with a value is refused as ``UNEXPECTED_INPUT``, as VMware's vAPI server does
(``ApiInterfaceSkeleton.check_for_unknown_fields`` in vmware-vapi-runtime; the error is documented
as "the request contained a parameter or field whose name is not known by the server", e.g. a
client newer than the server, or a typo, over REST: vSphere Automation API,
com.vmware.vapi.std.errors.unexpected_input); one that is null is ignored, as that skeleton
ignores unset ones. Messages are the runtime's own (their ids and sentences, from
``vmware/vapi/settings/runtime.properties``), each prefixed with where in the body it applies;
only a missing body or one that is not JSON gets one of ours (``tkgs.stand_in.body.*``).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from com.vmware.vcenter.namespace_management_client import Clusters, LoadBalancers
from vmware.vapi.bindings import type as vapi_type
from vmware.vapi.bindings.converter import RestConverter
from vmware.vapi.bindings.datetime_helper import DateTimeConverter
from vmware.vapi.bindings.struct import VapiStruct
from vmware.vapi.bindings.uri_helper import URIValidator
from vmware.vapi.data.serializers.cleanjson import DataValueConverter
from vmware.vapi.data.value import StructValue
from vmware.vapi.exception import CoreException
from vmware.vapi.l10n.runtime import message_factory
from vmware.vapi.message import Message

from tkgs_lib.credentials import Secret

__all__ = ["Refusal", "SpecRejected", "decode", "decode_json", "decode_enable_spec", "decode_load_balancer_update",
           "INVALID_ARGUMENT", "UNEXPECTED_INPUT"]

# vCenter's /api error types (vSphere Automation API: "API responses", the HTTP error codes table).
INVALID_ARGUMENT, UNEXPECTED_INPUT = "INVALID_ARGUMENT", "UNEXPECTED_INPUT"
_MISSING = object()
_INVALID = object()  # a value that was refused (its refusal is recorded)
INT64 = (-(2 ** 63), 2 ** 63 - 1)  # vAPI's integer is a 64-bit long


@dataclass(frozen=True)
class Refusal:
    """One problem with a body: where (``load_balancer_config_spec.address_ranges[0].count``; empty
    for the body itself), vCenter's error type, and the runtime's message."""

    path: str
    error_type: str
    message: Message

    @property
    def sentence(self) -> str:
        return f"{self.path}: {self.message.def_msg}" if self.path else self.message.def_msg


class SpecRejected(Exception):
    """The body does not decode; ``refusals`` holds every problem found."""

    def __init__(self, refusals: list[Refusal]) -> None:
        self.refusals = list(refusals)
        super().__init__("; ".join(r.sentence for r in self.refusals))

    @property
    def error_type(self) -> str:
        """One type for the answer: UNEXPECTED_INPUT only when that is all there is."""
        types = {r.error_type for r in self.refusals}
        return UNEXPECTED_INPUT if types == {UNEXPECTED_INPUT} else INVALID_ARGUMENT


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


_KINDS = {vapi_type.IntegerType: "integer", vapi_type.DoubleType: "double", vapi_type.StringType: "string",
          vapi_type.SecretType: "secret (string)", vapi_type.BooleanType: "boolean", vapi_type.IdType: "id (string)",
          vapi_type.URIType: "URI (string)", vapi_type.DateTimeType: "date-time (string)",
          vapi_type.BlobType: "blob (base64 string)", vapi_type.ListType: "list (array)",
          vapi_type.SetType: "set (array)", vapi_type.MapType: "map (object)", vapi_type.VoidType: "void (null)"}


def _type_name(typ: vapi_type.BindingType) -> str:
    if isinstance(typ, vapi_type.StructType):
        return typ.name
    if isinstance(typ, vapi_type.EnumType):
        return f"enumeration {typ.name}"
    return _KINDS.get(type(typ), type(typ).__name__)


class _Decoder:
    def __init__(self) -> None:
        self.refusals: list[Refusal] = []

    def refuse(self, path: str, msg_id: str, *args: Any, error_type: str = INVALID_ARGUMENT) -> object:
        self.refusals.append(Refusal(path, error_type, message_factory.get_message(msg_id, *args)))
        return _INVALID

    def refuse_messages(self, path: str, messages) -> object:
        for message in messages:
            self.refusals.append(Refusal(path, INVALID_ARGUMENT, message))
        return _INVALID

    def mismatch(self, path: str, typ: vapi_type.BindingType, value: Any) -> object:
        return self.refuse(path, "vapi.data.validate.mismatch", _type_name(typ), _json_kind(value))

    def visit(self, typ: vapi_type.BindingType, value: Any, path: str) -> Any:
        if isinstance(typ, vapi_type.ReferenceType):
            typ = typ.resolved_type
        if isinstance(typ, vapi_type.OptionalType):
            return None if value is None else self.visit(typ.element_type, value, path)
        if value is None and not isinstance(typ, (vapi_type.VoidType, vapi_type.OpaqueType)):
            if not path:
                return self.mismatch(path, typ, value)
            return self.refuse(path, "vapi.data.structure.setfield.null", path.rsplit(".", 1)[-1])
        if isinstance(typ, vapi_type.DynamicStructType):  # any object, kept as the runtime keeps one
            if not isinstance(value, dict):
                return self.mismatch(path, typ, value)
            return VapiStruct(struct_value=_data_value(value), rest_converter_mode=RestConverter.SWAGGER_REST)
        if isinstance(typ, vapi_type.StructType):
            return self.struct(typ, value, path)
        if isinstance(typ, vapi_type.EnumType):
            return self.enum(typ, value, path)
        if isinstance(typ, vapi_type.ListType):
            if not isinstance(value, list):
                return self.mismatch(path, typ, value)
            items = [self.visit(typ.element_type, item, f"{path}[{i}]") for i, item in enumerate(value)]
            return _INVALID if _refused(items) else items
        if isinstance(typ, vapi_type.SetType):
            return self.set(typ, value, path)
        if isinstance(typ, vapi_type.MapType):
            return self.map(typ, value, path)
        if isinstance(typ, vapi_type.BooleanType):
            return value if isinstance(value, bool) else self.mismatch(path, typ, value)
        if isinstance(typ, vapi_type.IntegerType):
            if not isinstance(value, int) or isinstance(value, bool):
                return self.mismatch(path, typ, value)
            if not INT64[0] <= value <= INT64[1]:
                return self.refuse(path, "vapi.data.validate.mismatch", "integer (64-bit)", str(value))
            return value
        if isinstance(typ, vapi_type.DoubleType):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                return self.mismatch(path, typ, value)
            return float(value)
        if isinstance(typ, vapi_type.SecretType):  # held as a str that prints masked (the bindings print it)
            return Secret(value) if isinstance(value, str) else self.mismatch(path, typ, value)
        if isinstance(typ, (vapi_type.StringType, vapi_type.IdType)):
            return value if isinstance(value, str) else self.mismatch(path, typ, value)
        if isinstance(typ, vapi_type.URIType):
            if not isinstance(value, str):
                return self.mismatch(path, typ, value)
            return self.by_runtime(path, lambda: (URIValidator.validate(value), value)[1])
        if isinstance(typ, vapi_type.DateTimeType):
            if not isinstance(value, str):
                return self.mismatch(path, typ, value)
            return self.by_runtime(path, lambda: DateTimeConverter.convert_from_rfc3339_to_datetime(value))
        if isinstance(typ, vapi_type.BlobType):
            if not isinstance(value, str):
                return self.mismatch(path, typ, value)
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return self.refuse(path, "vapi.data.validate.mismatch", _type_name(typ), "a string that is not base64")
        if isinstance(typ, vapi_type.VoidType):
            return None if value is None else self.mismatch(path, typ, value)
        if isinstance(typ, vapi_type.OpaqueType):  # any value, as the runtime's data value
            return _data_value(value)
        return self.refuse(path, "vapi.json.read.notimplemented", type(typ).__name__)

    def by_runtime(self, path: str, check) -> Any:
        try:
            return check()
        except CoreException as exc:
            return self.refuse_messages(path, exc.messages)

    def enum(self, typ: vapi_type.EnumType, value: Any, path: str) -> Any:
        if not isinstance(value, str):
            return self.mismatch(path, typ, value)
        # The client bindings accept values they do not know (a newer server may send them); a
        # server accepts only its own.
        for known in typ.binding_class.get_values():
            if known == value:
                return known
        allowed = ", ".join(typ.binding_class.get_values())
        return self.refuse(path, "vapi.bindings.typeconverter.unexpected.enum.type",
                           f"{typ.name} (one of {allowed})", repr(value))

    def set(self, typ: vapi_type.SetType, value: Any, path: str) -> Any:
        if not isinstance(value, list):
            return self.mismatch(path, typ, value)
        items = [self.visit(typ.element_type, item, f"{path}[{i}]") for i, item in enumerate(value)]
        if _refused(items):
            return _INVALID
        result = set()
        for i, item in enumerate(items):
            if item in result:
                return self.refuse(f"{path}[{i}]", "vapi.bindings.typeconverter.set.duplicate.element", item)
            result.add(item)
        return result

    def map(self, typ: vapi_type.MapType, value: Any, path: str) -> Any:
        # /api writes a map as a JSON object (the /rest form, a list of key/value pairs, is not this).
        if not isinstance(value, dict):
            return self.mismatch(path, typ, value)
        result = {}
        for key, item in value.items():
            decoded_key = self.visit(typ.key_type, key, f"{path}[{key!r}]")
            decoded = self.visit(typ.value_type, item, f"{path}.{key}")
            if decoded_key is not _INVALID and decoded is not _INVALID:
                result[decoded_key] = decoded
        return result if len(result) == len(value) else _INVALID

    def struct(self, typ: vapi_type.StructType, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            return self.mismatch(path, typ, value)
        before = len(self.refusals)
        cls = typ.binding_class
        names = typ.get_field_names()
        for key, item in value.items():
            if key not in names and item is not None:
                self.refuse(_join(path, key), "vapi.data.structure.field.unexpected", key, typ.name,
                            error_type=UNEXPECTED_INPUT)
        kwargs = {}
        for wire in names:  # the wire names the bindings declare; the Python ones may differ
            field_type = typ.get_field(wire)
            item = value.get(wire, _MISSING)
            where = _join(path, wire)
            if item is _MISSING:
                if not isinstance(field_type, vapi_type.OptionalType):
                    self.refuse(where, "vapi.data.structure.field.missing", typ.name, wire)
                    continue
                item = None
            kwargs[cls._get_pep_name(wire)] = self.visit(field_type, item, where)
        self.unions(typ, value, kwargs, path)
        return _INVALID if len(self.refusals) > before else cls(**kwargs)

    def unions(self, typ: vapi_type.StructType, value: dict, decoded: dict, path: str) -> None:
        """The structure's own rules, by the bindings' validators (unions: which fields each value
        of a discriminant needs or forbids). They look only at which fields are set, so they judge
        the body as sent, even where a field inside is refused; not where the discriminant itself
        is (that would only echo its refusal)."""
        cls = typ.binding_class
        validators = getattr(cls, "_validator_list", None) or []
        if not validators:
            return
        struct_value = StructValue(typ.name)
        for name, item in _data_value(value).get_fields():
            struct_value.set_field(name, item)
        for validator in validators:
            discriminant = getattr(validator, "_discriminant_name", None)
            if discriminant and decoded.get(cls._get_pep_name(discriminant), _INVALID) is _INVALID:
                continue  # missing or refused
            self.refuse_messages(path, validator.validate(struct_value, typ) or [])


def _refused(items: list) -> bool:
    return any(item is _INVALID for item in items)  # by identity: a structure's == compares fields


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _data_value(value: Any):
    return DataValueConverter.convert_to_data_value(json.dumps(value))


def decode(binding_type: vapi_type.BindingType, value: Any) -> Any:
    """``value`` (parsed JSON) as the bindings' Python value of ``binding_type``; SpecRejected otherwise."""
    decoder = _Decoder()
    result = decoder.visit(binding_type, value, "")
    if decoder.refusals:
        raise SpecRejected(decoder.refusals)
    return result


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")  # json.loads would take NaN and Infinity; RFC 8259 does not


def decode_json(binding_type: vapi_type.BindingType, body: str | bytes) -> Any:
    """A request body (JSON text) decoded as :func:`decode` does; a body that is not JSON is refused too."""
    if not body or not body.strip():
        raise SpecRejected([Refusal("", INVALID_ARGUMENT, Message(
            "tkgs.stand_in.body.missing", f"The request has no body; it must be a {_type_name(binding_type)}.",
            _type_name(binding_type)))])
    try:  # json.loads reads UTF-8 (and -16, -32) bytes itself; bad bytes are a ValueError too
        value = json.loads(body, parse_constant=_refuse_constant)
    except ValueError as exc:
        raise SpecRejected([Refusal("", INVALID_ARGUMENT, Message(
            "tkgs.stand_in.body.not_json", f"The request body is not JSON ({exc}).", str(exc)))]) from None
    return decode(binding_type, value)


def decode_enable_spec(body: str | bytes) -> Clusters.EnableSpec:
    """The body of ``POST /api/vcenter/namespace-management/clusters/{cluster}?action=enable``."""
    return decode_json(Clusters.EnableSpec.get_binding_type(), body)


def decode_load_balancer_update(body: str | bytes) -> LoadBalancers.UpdateSpec:
    """The body of ``PATCH /api/vcenter/namespace-management/clusters/{cluster}/load-balancers/{id}``
    (``LoadBalancers.update``, vSphere API 7.0.3.0: the operation's body is its ``spec``)."""
    return decode_json(LoadBalancers.UpdateSpec.get_binding_type(), body)

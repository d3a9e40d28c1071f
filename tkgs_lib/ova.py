"""Read an OVA where it lies: its members, its manifest, its OVF descriptor.

An OVA is a plain tar of ``<name>.ovf``, ``<name>.mf`` (``SHA256(<file>)= <hex>`` lines) and the
disks. Nothing is extracted: :class:`Ova` reads the tar headers once (name, size and where each
member's bytes start), and :class:`MemberReader` is a read-only window onto one member, so a
multi-GiB disk is hashed and uploaded in chunks with flat memory.

:meth:`Ova.verify` checks every file against the manifest before anything trusts the OVA;
:meth:`Ova.descriptor` parses the OVF (deployment options, networks, vApp properties, disks) in
Python because the simulator does not implement ``OvfManager.ParseDescriptor``.
"""

from __future__ import annotations

import hashlib
import os
import re
import tarfile
import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

from .errors import ManifestMismatch, OvaError

__all__ = [
    "CHUNK_SIZE", "DIGEST_PREFIX", "Ova", "OvaMember", "OvaContent", "ManifestEntry", "MemberReader",
    "OvfDescriptor", "DeploymentOption", "OvfNetwork", "OvfProperty", "OvfDisk",
    "parse_manifest", "parse_descriptor",
]

CHUNK_SIZE = 1 << 20  # 1 MiB: large enough that per-chunk Python overhead vanishes next to I/O
# How an OVA's identity (the sha256 of its manifest) is written, e.g. on a library item's description.
DIGEST_PREFIX = "sha256-manifest:"

_ALGORITHMS = {"SHA1": "sha1", "SHA256": "sha256", "SHA512": "sha512"}
_MANIFEST_LINE = re.compile(r"^\s*(SHA1|SHA256|SHA512)\s*\(\s*(.+?)\s*\)\s*=\s*([0-9A-Fa-f]+)\s*$",
                            re.IGNORECASE)
_UNCHECKED_SUFFIXES = (".mf", ".cert")  # the manifest and its signature are not listed in it
# The appliance's descriptor is 40 KB, its manifest 300 bytes: past these an OVA is not one, and
# reading it whole into memory would be the first harm it does.
MAX_DESCRIPTOR_BYTES, MAX_MANIFEST_BYTES = 16 << 20, 1 << 20
MAX_DISK_BYTES = 1 << 50  # a petabyte: larger than any disk vSphere makes (62 TB), so a size past it is a lie


@dataclass(frozen=True)
class OvaMember:
    """One file inside the OVA's tar: its name, size and the offset of its first byte."""

    name: str
    size: int
    offset: int


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    algorithm: str  # SHA1, SHA256 or SHA512 (upper case)
    digest: str  # lower-case hex


@dataclass(frozen=True)
class OvaContent:
    """What an OVA puts into a library item: the manifest's digest and each file's name and size.

    Two OVAs with equal ``OvaContent`` upload the same item; this is what a rerun compares.
    """

    manifest_digest: str  # sha256 of the .mf file's bytes
    files: tuple[tuple[str, int], ...]  # (name, size) in tar order

    @property
    def total_size(self) -> int:
        return sum(size for _, size in self.files)

    def describe(self) -> str:
        files = ", ".join(f"{name} ({size:,} B)" for name, size in sorted(self.files))
        return f"{DIGEST_PREFIX}{self.manifest_digest[:12]}…; {files}"


class MemberReader:
    """A read-only, file-like window onto one tar member: ``read(n)`` never passes its end.

    ``len()`` is the member's size (with ``tell()``, requests derives Content-Length from it);
    iterating yields chunks of ``chunk_size`` bytes.
    """

    def __init__(self, path: Path, member: OvaMember, chunk_size: int = CHUNK_SIZE) -> None:
        self.name = member.name
        self._size = member.size
        self._start = member.offset
        self._pos = 0
        self.chunk_size = chunk_size
        self._file = open(path, "rb", buffering=0)  # unbuffered: no second copy of each chunk
        self._file.seek(self._start)

    def __len__(self) -> int:
        return self._size

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._pos
        if n is None or n < 0 or n > left:
            n = left
        if n == 0:
            return b""
        data = self._file.read(n)
        if len(data) < n:
            # A raw read may return short; only the end of the file is an error.
            parts = [data]
            got = len(data)
            while got < n:
                more = self._file.read(n - got)
                if not more:
                    raise OvaError(f"{self._file.name}: ends inside {self.name}; the OVA is truncated, "
                                   f"download it again.")
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        self._pos += n
        return data

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read(self.chunk_size):
            yield chunk

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "MemberReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Ova:
    """An OVA file, read in place. Raises :class:`OvaError` when it is not a readable OVA."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.members = _read_members(self.path)
        self._by_name = {m.name: m for m in self.members}
        descriptors = [m for m in self.members if m.name.lower().endswith(".ovf")]
        if len(descriptors) != 1:
            found = ", ".join(m.name for m in self.members) or "nothing"
            raise OvaError(f"{self.path}: an OVA holds exactly one OVF descriptor (.ovf), this one "
                           f"holds {len(descriptors)} ({found}); is it really an OVA?")
        self.descriptor_member = descriptors[0]
        manifests = [m for m in self.members if m.name.lower().endswith(".mf")]
        if len(manifests) > 1:
            raise OvaError(f"{self.path}: holds {len(manifests)} manifests (.mf); an OVA has one.")
        self.manifest_member: Optional[OvaMember] = manifests[0] if manifests else None

    def __repr__(self) -> str:
        return f"<Ova {self.path} ({len(self.members)} files)>"

    def member(self, name: str) -> OvaMember:
        try:
            return self._by_name[name]
        except KeyError:
            raise OvaError(f"{self.path}: has no file {name!r}.") from None

    def open(self, name: str, chunk_size: int = CHUNK_SIZE) -> MemberReader:
        return MemberReader(self.path, self.member(name), chunk_size)

    def read_bytes(self, name: str, limit: int = MAX_DESCRIPTOR_BYTES) -> bytes:
        """A member's whole content: for the small descriptor and manifest only (at most ``limit``)."""
        member = self.member(name)
        if member.size > limit:
            raise OvaError(f"{self.path}: its {name} is {member.size:,} bytes, more than the {limit:,} a descriptor or "
                           f"manifest has; this is not the appliance's OVA.")
        with self.open(name) as reader:
            return reader.read()

    def manifest(self) -> dict[str, ManifestEntry]:
        """The manifest's entries by file name; OvaError/ManifestMismatch when absent or unreadable."""
        if self.manifest_member is None:
            raise ManifestMismatch(
                f"{self.path}: has no manifest (.mf), so its files cannot be checked; use the OVA as "
                f"its publisher ships it, with its .mf.")
        text = self.read_bytes(self.manifest_member.name, MAX_MANIFEST_BYTES).decode("utf-8", errors="replace")
        return parse_manifest(text, where=f"{self.path}: {self.manifest_member.name}")

    def manifest_digest(self) -> str:
        """sha256 (hex) of the manifest's bytes: the identity of the OVA's content."""
        if self.manifest_member is None:
            self.manifest()  # raises the "no manifest" error
        return hashlib.sha256(self.read_bytes(self.manifest_member.name, MAX_MANIFEST_BYTES)).hexdigest()

    def content(self) -> OvaContent:
        """The files to upload (every member, in tar order) and the manifest's digest."""
        return OvaContent(self.manifest_digest(), tuple((m.name, m.size) for m in self.members))

    def descriptor(self) -> "OvfDescriptor":
        text = self.read_bytes(self.descriptor_member.name)
        return parse_descriptor(text, where=f"{self.path}: {self.descriptor_member.name}")

    def verify(self, progress: bool = True) -> dict[str, ManifestEntry]:
        """Check every file against the manifest, streaming; return the manifest on success.

        Raises :class:`ManifestMismatch` naming the file for a wrong digest, a listed file that is
        missing, or a file the manifest does not list (the manifest itself and a .cert excepted).
        """
        entries = self.manifest()
        for entry in entries.values():
            if entry.name not in self._by_name:
                raise ManifestMismatch(
                    f"{self.path}: its manifest lists {entry.name}, but the OVA has no such file; the "
                    f"OVA is incomplete or altered, download it again.",
                    file=entry.name, expected=entry.digest)
        for m in self.members:
            if m.name not in entries and not m.name.lower().endswith(_UNCHECKED_SUFFIXES):
                raise ManifestMismatch(
                    f"{self.path}: {m.name} is not listed in the manifest "
                    f"{self.manifest_member.name}, so it cannot be checked; the OVA was altered, "
                    f"download it again.", file=m.name)
        checked = [m for m in self.members if m.name in entries]  # tar order: one forward pass
        from .display.progress import progress_bar  # a widget for a person, plain text in a headless record

        with progress_bar(total=sum(m.size for m in checked), unit="B", unit_scale=True, unit_divisor=1024,
                  desc=f"checking {self.path.name}", disable=not progress) as bar:
            for m in checked:
                entry = entries[m.name]
                digest = hashlib.new(_ALGORITHMS[entry.algorithm])
                with MemberReader(self.path, m) as reader:
                    for chunk in reader:
                        digest.update(chunk)
                        bar.update(len(chunk))
                actual = digest.hexdigest()
                if actual != entry.digest:
                    raise ManifestMismatch(
                        f"{self.path}: {m.name} does not match the manifest: {entry.algorithm} "
                        f"expected {entry.digest}, actual {actual}; the file is damaged or was "
                        f"altered, download the OVA again.",
                        file=m.name, expected=entry.digest, actual=actual)
        return entries


def _read_members(path: Path) -> list[OvaMember]:
    if not path.exists():
        raise OvaError(f"{path}: no such OVA file.")
    if path.is_dir():
        raise OvaError(f"{path}: is a folder; give the path of the .ova file.")
    if not path.is_file():  # a FIFO or a device would hang the reader, or never end
        raise OvaError(f"{path}: is not a regular file; give the path of the downloaded .ova file.")
    members: list[OvaMember] = []
    try:
        # "r:" = uncompressed only: an OVA is never compressed, and only then can we seek to members.
        with tarfile.open(path, mode="r:") as tar:
            for info in tar:  # reads headers only; data is skipped by seeking
                if not info.isreg():
                    continue
                problem = _member_name_problem(info.name)
                if problem:
                    raise OvaError(f"{path}: holds a file named {info.name[:80]!r}, {problem}; an OVA holds plain file "
                                   f"names only: this one is malformed or made to harm, nothing of it is used.")
                members.append(OvaMember(info.name, info.size, info.offset_data))
    except tarfile.ReadError:
        raise OvaError(f"{path}: is not an OVA (not a tar archive); an .ovf/.vmdk folder must be "
                       f"packed into an OVA first (ovftool).") from None
    except OSError as exc:
        raise OvaError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise OvaError(f"{path}: holds {', '.join(dup)} more than once; the OVA is malformed.")
    size = os.path.getsize(path)
    for m in members:
        if m.offset + m.size > size:
            raise OvaError(f"{path}: ends inside {m.name}; the OVA is truncated, download it again.")
    return members


def _member_name_problem(name: str) -> str:
    """Why ``name`` is no plain file name (one a library item could hold), or ""."""
    if not name or name.startswith("/") or "\\" in name:
        return "an absolute or Windows path"
    if any(part in ("..", ".") for part in name.split("/")) or "/" in name:
        return "a path into other folders"
    if any(unicodedata.category(c).startswith("C") for c in name):
        return "with control or invisible characters"
    return ""


def parse_manifest(text: str, where: str = "manifest") -> dict[str, ManifestEntry]:
    """Parse ``SHA256(file)= hex`` / ``SHA1(file)= hex`` lines (any case, any spacing)."""
    entries: dict[str, ManifestEntry] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _MANIFEST_LINE.match(line)
        if not match:
            raise OvaError(f"{where}: line {number} is not `SHA256(<file>)= <hex>`: {line.strip()[:80]!r}.")
        algorithm, name, digest = match.group(1).upper(), match.group(2), match.group(3).lower()
        expected_len = hashlib.new(_ALGORITHMS[algorithm]).digest_size * 2
        if len(digest) != expected_len:
            raise OvaError(f"{where}: line {number}: a {algorithm} digest has {expected_len} hex "
                           f"digits, this one {len(digest)}.")
        if name in entries:
            raise OvaError(f"{where}: lists {name} twice.")
        entries[name] = ManifestEntry(name, algorithm, digest)
    if not entries:
        raise OvaError(f"{where}: lists no file.")
    return entries


# --- the OVF descriptor ------------------------------------------------------------------------

@dataclass(frozen=True)
class DeploymentOption:
    id: str
    label: str
    description: str
    default: bool


@dataclass(frozen=True)
class OvfNetwork:
    name: str
    description: str
    configurations: tuple[str, ...]  # deployment options that have it; empty = all


@dataclass(frozen=True)
class OvfProperty:
    key: str  # "<class>.<key>", e.g. network.hostname
    type: str  # string, boolean, int, ...
    default: Optional[str]
    user_configurable: bool
    password: bool
    label: str
    configurations: tuple[str, ...]  # empty = every deployment option
    qualifiers: str = ""


@dataclass(frozen=True)
class OvfDisk:
    disk_id: str
    file: str  # the file's name in the OVA (href)
    file_size: Optional[int]
    capacity: int  # bytes the guest sees


@dataclass(frozen=True)
class OvfDescriptor:
    name: str  # the VirtualSystem's id
    deployment_options: tuple[DeploymentOption, ...]
    networks: tuple[OvfNetwork, ...]
    properties: tuple[OvfProperty, ...]
    disks: tuple[OvfDisk, ...]
    transport: str  # e.g. com.vmware.guestInfo
    cpus: Optional[int]
    memory_mb: Optional[int]
    version: str = ""

    @property
    def default_deployment(self) -> Optional[str]:
        for option in self.deployment_options:
            if option.default:
                return option.id
        return self.deployment_options[0].id if self.deployment_options else None

    def networks_for(self, deployment: str) -> list[str]:
        """Network names present under a deployment option, in descriptor order."""
        return [n.name for n in self.networks if not n.configurations or deployment in n.configurations]

    def properties_for(self, deployment: str) -> list[OvfProperty]:
        return [p for p in self.properties if not p.configurations or deployment in p.configurations]

    def property(self, key: str) -> OvfProperty:
        for p in self.properties:
            if p.key == key:
                return p
        raise KeyError(key)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(element: ET.Element, name: str, default: Optional[str] = None) -> Optional[str]:
    """An attribute by local name, whatever its namespace (ovf:, vmw: or none)."""
    for key, value in element.attrib.items():
        if _local(key) == name:
            return value
    return default


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child_text(element: ET.Element, name: str, strings: dict[str, str]) -> str:
    for child in _children(element, name):
        msgid = _attr(child, "msgid")
        text = (child.text or "").strip()
        return text or strings.get(msgid or "", "")
    return ""


def _descendants(element: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in element.iter() if _local(e.tag) == name]


def _configurations(element: ET.Element) -> tuple[str, ...]:
    return tuple((_attr(element, "configuration") or "").split())


def _bool(value: Optional[str], default: bool = False) -> bool:
    return default if value is None else value.strip().lower() == "true"


_UNITS = re.compile(r"^\s*byte\s*(?:\*\s*([0-9]{1,4})\s*\^\s*([0-9]{1,12}))?\s*$", re.IGNORECASE)


def _bytes(amount: Optional[str], units: Optional[str]) -> int:
    """``capacity`` × ``capacityAllocationUnits`` (``byte * 2^30``) in bytes: ASCII digits only, and
    bounded (``byte * 10^99999999`` would take the arithmetic hours; no disk is larger than a petabyte)."""
    amount = (amount or "0").strip()
    if not re.fullmatch(r"[0-9]{1,20}", amount):
        raise ValueError(f"{amount[:40]!r} is not a whole number of ASCII digits")
    match = _UNITS.match(units or "byte")
    if not match:
        raise ValueError(f"unknown allocation units {(units or '')[:40]!r}")
    value = int(amount)
    if match.group(1):
        base, exponent = int(match.group(1)), int(match.group(2))
        if base > 1 and exponent * (base.bit_length() - 1) > MAX_DISK_BYTES.bit_length():
            raise ValueError(f"{base}^{exponent} bytes is larger than any disk")
        value *= base ** exponent
    if value > MAX_DISK_BYTES:
        raise ValueError(f"{value:.3g} bytes is larger than any disk")
    return value


# CIM's ResourceType of the hardware items read: 3 a processor, 4 memory (DSP0004's CIM_ResourceAllocationSettingData).
_COUNTED = {"3": "CPU count", "4": "memory size"}


def parse_descriptor(text: str | bytes, where: str = "OVF descriptor") -> OvfDescriptor:
    """Read an OVF descriptor's deployment options, networks, vApp properties and disks.

    Through defusedxml, which refuses a DTD, entities and external references: an OVF descriptor has
    none, and an entity bomb or an external entity is an attack on the reader."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root = fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except ET.ParseError as exc:
        raise OvaError(f"{where}: is not valid XML ({exc}).") from None
    except DefusedXmlException as exc:
        raise OvaError(f"{where}: holds a document type or entity declaration ({type(exc).__name__}), which no OVF "
                       f"descriptor has: it is refused unread.") from None
    if _local(root.tag) != "Envelope":
        raise OvaError(f"{where}: is not an OVF descriptor (its root is <{_local(root.tag)}>, "
                       f"not <Envelope>).")
    strings = {_attr(m, "msgid") or "": (m.text or "").strip() for m in _descendants(root, "Msg")}
    files = {_attr(f, "id"): f for f in _descendants(root, "File")}
    systems = _descendants(root, "VirtualSystem")
    if not systems:
        raise OvaError(f"{where}: describes no VirtualSystem.")
    system = systems[0]

    options = tuple(
        DeploymentOption(id=_attr(c, "id") or "", label=_child_text(c, "Label", strings),
                         description=_child_text(c, "Description", strings),
                         default=_bool(_attr(c, "default")))
        for c in _descendants(root, "Configuration"))
    networks = tuple(
        OvfNetwork(name=_attr(n, "name") or "", description=_child_text(n, "Description", strings),
                   configurations=_configurations(n))
        for section in _descendants(root, "NetworkSection") for n in _children(section, "Network"))
    properties = []
    for section in _descendants(system, "ProductSection"):
        cls = _attr(section, "class")
        for p in _children(section, "Property"):
            key = _attr(p, "key") or ""
            properties.append(OvfProperty(
                key=f"{cls}.{key}" if cls else key, type=_attr(p, "type") or "string",
                default=_attr(p, "value"), user_configurable=_bool(_attr(p, "userConfigurable")),
                password=_bool(_attr(p, "password")), label=_child_text(p, "Label", strings),
                configurations=_configurations(p), qualifiers=_attr(p, "qualifiers") or ""))
    disks = []
    try:
        for d in _descendants(root, "Disk"):
            ref = files.get(_attr(d, "fileRef"))
            size = _attr(ref, "size") if ref is not None else None
            disks.append(OvfDisk(disk_id=_attr(d, "diskId") or "",
                                 file=_attr(ref, "href") or "" if ref is not None else "",
                                 file_size=int(size) if size else None,
                                 capacity=_bytes(_attr(d, "capacity"), _attr(d, "capacityAllocationUnits"))))
    except ValueError as exc:
        raise OvaError(f"{where}: a disk's size cannot be read ({exc}).") from None

    hardware = _descendants(system, "VirtualHardwareSection")
    transport = (_attr(hardware[0], "transport") or "") if hardware else ""
    cpus = memory = None
    for item in _descendants(system, "Item"):
        kind = {_local(c.tag): (c.text or "").strip() for c in item}
        what = _COUNTED.get(kind.get("ResourceType", ""))
        if what is None or "VirtualQuantity" not in kind:
            continue
        quantity = kind["VirtualQuantity"]
        if not re.fullmatch(r"[0-9]{1,12}", quantity):  # not str.isdigit(): "²" is a digit to it
            raise OvaError(f"{where}: the {what} (the VirtualQuantity of the VirtualHardwareSection's Item of "
                           f"ResourceType {kind['ResourceType']}) is {quantity[:40]!r}, not a whole number of at most "
                           f"12 ASCII digits.")
        if what == "CPU count":
            cpus = int(quantity)
        else:
            try:
                memory = _bytes(quantity, kind.get("AllocationUnits")) // (1 << 20)
            except ValueError:  # units this reader does not know: memory stays unknown
                memory = None
    versions = [(v.text or "").strip() for v in _descendants(system, "Version")]
    return OvfDescriptor(name=_attr(system, "id") or "", deployment_options=options,
                         networks=networks, properties=tuple(properties), disks=tuple(disks),
                         transport=transport, cpus=cpus, memory_mb=memory,
                         version=next((v for v in versions if v), ""))

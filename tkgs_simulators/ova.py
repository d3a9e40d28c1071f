"""A small stand-in for the HAProxy appliance's OVA, for the tests and ``tkgs-runbook demo``.

The descriptor is written from the appliance's published facts: deployment options ``default``
(2 NICs: Management, Workload) and ``frontend`` (adds Frontend), the vApp properties of v0.1.x
(plus ``network.additional_workload_networks`` from v0.2.0), the ``com.vmware.guestInfo``
transport, 2 vCPU, 4096 MB and one disk. The disk is generated, not real: deterministic
pseudo-random (or zero) bytes streamed in chunks, so a multi-GiB OVA is written with flat memory.
The tar holds ``<name>.ovf``, ``<name>.mf`` and ``<name>.ova.vmdk`` in that order, as the real one.
"""

from __future__ import annotations

import hashlib
import io
import random
import tarfile
from pathlib import Path
from typing import Iterator, Literal
from xml.sax.saxutils import escape, quoteattr

CHUNK_SIZE = 1 << 20  # what is written at a time: 1 MiB

__all__ = ["build_ova", "haproxy_descriptor", "HAPROXY_PROPERTIES", "DEFAULT_DISK_SIZE"]

DEFAULT_DISK_SIZE = 2 << 20  # 2 MiB, as the reference descriptors
DISK_CAPACITY_GIB = 20

# (class, key, type, default, password, qualifiers, only under deployment option, since v0.2)
HAPROXY_PROPERTIES = [
    ("appliance", "root_pwd", "string", "", True, "", None, False),
    ("appliance", "permit_root_login", "boolean", "true", False, "", None, False),
    ("appliance", "ca_cert", "string", "", False, "MinLen(0),MaxLen(65535)", None, False),
    ("appliance", "ca_cert_key", "string", "", False, "MinLen(0),MaxLen(65535)", None, False),
    ("network", "hostname", "string", "haproxy.local", False, "", None, False),
    ("network", "nameservers", "string", "1.1.1.1, 1.0.0.1", False, "", None, False),
    ("network", "management_ip", "string", None, False, "", None, False),
    ("network", "management_gateway", "string", None, False, "", None, False),
    ("network", "workload_ip", "string", None, False, "", None, False),
    ("network", "workload_gateway", "string", None, False, "", None, False),
    ("network", "additional_workload_networks", "string", None, False, "", None, True),
    ("network", "frontend_ip", "string", None, False, "", "frontend", False),
    ("network", "frontend_gateway", "string", None, False, "", "frontend", False),
    ("loadbalance", "service_ip_range", "string", "", False, "", None, False),
    ("loadbalance", "dataplane_port", "int", "5556", False, "MinValue(1),MaxValue(65535)", None, False),
    ("loadbalance", "haproxy_user", "string", "", False, "", None, False),
    ("loadbalance", "haproxy_pwd", "string", "", True, "", None, False),
]

_NICS = [("Management", 160, None), ("Workload", 192, None), ("Frontend", 224, "frontend")]


def _has_v02_properties(version: str) -> bool:
    return not version.startswith("v0.1.")


def haproxy_descriptor(name: str = "haproxy-v0.1.10", disk_file: str | None = None,
                       disk_size: int = DEFAULT_DISK_SIZE, version: str = "v0.1.10") -> str:
    """An OVF descriptor with the HAProxy appliance's options, networks, properties and one disk."""
    disk_file = disk_file or f"{name}.ova.vmdk"
    sections: dict[str, list[str]] = {}
    for cls, key, kind, default, password, qualifiers, config, since_v02 in HAPROXY_PROPERTIES:
        if since_v02 and not _has_v02_properties(version):
            continue
        attrs = f'ovf:key="{key}" ovf:type="{kind}" ovf:userConfigurable="true"'
        if password:
            attrs += ' ovf:password="true"'
        if qualifiers:
            attrs += f' ovf:qualifiers="{qualifiers}"'
        if default is not None:
            attrs += f" ovf:value={quoteattr(default)}"
        if config:
            attrs += f' ovf:configuration="{config}"'
        sections.setdefault(cls, []).append(
            f"      <Property {attrs}>\n        <Label>{escape(cls + '.' + key)}</Label>\n      </Property>")
    products = "\n".join(
        f'    <ProductSection ovf:class="{cls}" ovf:required="false">\n'
        f"      <Info>{cls.capitalize()} properties</Info>\n" + "\n".join(props) + "\n    </ProductSection>"
        for cls, props in sections.items())
    nics = "\n".join(
        f"""      <Item{f' ovf:configuration="{config}"' if config else ''}>
        <rasd:AddressOnParent>{i + 2}</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>{net}</rasd:Connection>
        <rasd:ElementName>{net} Network</rasd:ElementName>
        <rasd:InstanceID>{i + 5}</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
        <vmw:Config ovf:required="false" vmw:key="slotInfo.pciSlotNumber" vmw:value="{slot}"/>
      </Item>""" for i, (net, slot, config) in enumerate(_NICS))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData">
  <References>
    <File ovf:id="file1" ovf:href={quoteattr(disk_file)} ovf:size="{disk_size}"/>
  </References>
  <DiskSection>
    <Info>List of the virtual disks</Info>
    <Disk ovf:capacity="{DISK_CAPACITY_GIB}" ovf:capacityAllocationUnits="byte * 2^30" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:populatedSize="{disk_size}"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="Management">
      <Description>The Management network the Supervisor cluster uses to program HAProxy</Description>
    </Network>
    <Network ovf:name="Workload">
      <Description>The Workload network routable to Supervisor and Guest cluster nodes</Description>
    </Network>
    <Network ovf:name="Frontend" ovf:configuration="frontend">
      <Description>(Optional) The client-facing network for load-balanced virtual servers</Description>
    </Network>
  </NetworkSection>
  <DeploymentOptionSection>
    <Info>The list of deployment options</Info>
    <Configuration ovf:id="default" ovf:default="true">
      <Label ovf:msgid="config.default.label"/>
      <Description ovf:msgid="config.default.description"/>
    </Configuration>
    <Configuration ovf:id="frontend">
      <Label ovf:msgid="config.frontend.label"/>
      <Description ovf:msgid="config.frontend.description"/>
    </Configuration>
  </DeploymentOptionSection>
  <VirtualSystem ovf:id={quoteattr(name)}>
    <Info>A Virtual system</Info>
    <Name>{escape(name)}</Name>
    <OperatingSystemSection ovf:id="101" vmw:osType="other3xLinux64Guest">
      <Info>The operating system installed</Info>
      <Description>Other 3.x or later Linux (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection ovf:transport="com.vmware.guestInfo">
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>2</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>4096MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>4096</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI Controller 1</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard Disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
{nics}
    </VirtualHardwareSection>
    <ProductSection>
      <Info>Information about the installed software</Info>
      <Product>HAProxy for the Load Balancer API {escape(version)} (simulated)</Product>
      <Vendor>tkgs-runbook simulator</Vendor>
      <Version>{escape(version)}</Version>
      <FullVersion>{escape(version)}</FullVersion>
    </ProductSection>
{products}
  </VirtualSystem>
  <Strings>
    <Msg ovf:msgid="config.default.label">Default</Msg>
    <Msg ovf:msgid="config.default.description">2 NICs: Management and Workload; load-balanced IPs on the Workload network.</Msg>
    <Msg ovf:msgid="config.frontend.label">Frontend Network</Msg>
    <Msg ovf:msgid="config.frontend.description">3 NICs: Management, Workload and Frontend; load-balanced IPs on the Frontend network.</Msg>
  </Strings>
</Envelope>
"""


def _disk_chunks(size: int, seed: int, fill: str) -> Iterator[bytes]:
    """The generated disk, chunk by chunk: the same (size, seed, fill) always gives the same bytes."""
    if fill == "zeros":
        block = bytes(CHUNK_SIZE)
    else:
        block = random.Random(seed).randbytes(CHUNK_SIZE)
    sent, index = 0, 0
    while sent < size:
        n = min(CHUNK_SIZE, size - sent)
        if fill == "zeros":
            yield block[:n] if n < CHUNK_SIZE else block
        else:
            # Stamp the chunk number so no two chunks of the disk are equal.
            yield index.to_bytes(8, "big")[:n] + block[8:n]
        sent += n
        index += 1


class _ChunkStream(io.RawIOBase):
    """A read()-able view of a chunk iterator, for tarfile.addfile."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        # Fill the whole buffer unless the chunks run out: tarfile treats a short read as the end.
        filled = 0
        while filled < len(buffer):
            if not self._left:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._left = memoryview(chunk)
            n = min(len(buffer) - filled, len(self._left))
            buffer[filled:filled + n] = self._left[:n]
            self._left = self._left[n:]
            filled += n
        return filled


def build_ova(path: str | Path, *, disk_size: int = DEFAULT_DISK_SIZE, corrupt: bool = False,
              name: str = "haproxy-v0.1.10", version: str | None = None, seed: int = 0,
              algorithm: Literal["SHA256", "SHA1"] = "SHA256",
              fill: Literal["random", "zeros"] = "random", descriptor: str | None = None) -> Path:
    """Write a HAProxy-like OVA at ``path`` (a file, or a folder to put ``<name>.ova`` in).

    ``corrupt`` writes a wrong digest for the disk into the manifest. A different ``seed`` (or
    ``disk_size``) gives different content under the same file names. ``descriptor`` replaces the
    generated OVF descriptor (e.g. the appliance's real one; its disk file is ``<name>.ova.vmdk``).
    """
    path = Path(path)
    if path.is_dir():
        path = path / f"{name}.ova"
    version = version or (name.split("-", 1)[1] if name.startswith("haproxy-") else "v0.1.10")
    disk_name = f"{name}.ova.vmdk"
    descriptor = (descriptor or haproxy_descriptor(name, disk_name, disk_size, version)).encode()

    def digest(data_chunks) -> str:
        h = hashlib.new(algorithm.lower())
        for chunk in data_chunks:
            h.update(chunk)
        return h.hexdigest()

    # The manifest precedes the disk in the tar, so the disk is generated twice: once to hash it.
    disk_digest = digest(_disk_chunks(disk_size, seed, fill))
    if corrupt:
        disk_digest = digest([b"not the disk", disk_digest.encode()])
    manifest = (f"{algorithm}({name}.ovf)= {digest([descriptor])}\n"
                f"{algorithm}({disk_name})= {disk_digest}\n").encode()

    def add(tar: tarfile.TarFile, member: str, size: int, stream) -> None:
        info = tarfile.TarInfo(member)
        info.size, info.mode, info.mtime = size, 0o644, 0  # mtime 0: same inputs, same bytes
        tar.addfile(info, stream)

    tmp = path.with_name(path.name + ".part")
    try:
        with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT, copybufsize=CHUNK_SIZE) as tar:
            add(tar, f"{name}.ovf", len(descriptor), io.BytesIO(descriptor))
            add(tar, f"{name}.mf", len(manifest), io.BytesIO(manifest))
            add(tar, disk_name, disk_size, _ChunkStream(_disk_chunks(disk_size, seed, fill)))
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path

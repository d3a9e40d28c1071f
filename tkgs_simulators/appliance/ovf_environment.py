"""The OVF environment a VM with the ``com.vmware.guestInfo`` transport reads (``ovf-rpctool get ovfenv``):
the document the OVF standard defines (DMTF DSP0243, "OVF environment"), as vSphere fills it in: the
platform, then every vApp property's key and value (passwords included, in clear: the appliance's first
boot reads them from here), then the VM's NICs."""

from __future__ import annotations

from typing import Mapping
from xml.sax.saxutils import quoteattr

__all__ = ["ovf_environment"]


def ovf_environment(properties: Mapping[str, str], macs: Mapping[str, str], vm_id: str = "") -> str:
    """The document for ``properties`` (key → value) and ``macs`` (network → MAC)."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<Environment",
             '     xmlns="http://schemas.dmtf.org/ovf/environment/1"',
             '     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
             '     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"',
             '     xmlns:ve="http://www.vmware.com/schema/ovfenv"', '     oe:id=""',
             f"     ve:vCenterId={quoteattr(vm_id)}>", "   <PlatformSection>", "      <Kind>VMware ESXi</Kind>",
             "      <Version>7.0.3</Version>", "      <Vendor>VMware, Inc.</Vendor>", "      <Locale>en</Locale>",
             "   </PlatformSection>", "   <PropertySection>"]
    lines += [f"         <Property oe:key={quoteattr(key)} oe:value={quoteattr(value or '')}/>"
              for key, value in sorted(properties.items())]
    lines += ["   </PropertySection>", "   <ve:EthernetAdapterSection>"]
    lines += [f"      <ve:Adapter ve:mac={quoteattr(mac)} ve:network={quoteattr(network)} ve:unitNumber=\"{7 + i}\"/>"
              for i, (network, mac) in enumerate(macs.items())]
    lines += ["   </ve:EthernetAdapterSection>", "</Environment>"]
    return "\n".join(lines)

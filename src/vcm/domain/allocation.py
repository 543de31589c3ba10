"""The rules for boxIDs, vmIDs, hostnames and private IPs."""

from __future__ import annotations

import re
from collections.abc import Set
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from vcm.domain.errors import InvalidRequest, PoolExhausted
from vcm.domain.model import DYNAMIC_HOSTNAME, Box, BoxDefinition

_NOT_ALPHANUMERIC = re.compile(r"[^A-Za-z0-9]")
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_LABEL = 63
MAX_NAME = 253


def box_id_for(box_name: str, counter: int) -> str:
    return f"{_NOT_ALPHANUMERIC.sub('_', box_name)}_{counter}"


def vm_id_for(box_id: str, number: int) -> str:
    return f"{box_id}_{number}"


def is_dns_label(text: str) -> bool:
    return bool(_DNS_LABEL.match(text))


def is_dns_name(text: str) -> bool:
    return len(text) <= MAX_NAME and all(is_dns_label(label) for label in text.split("."))


def check_hostname_prefix(prefix: str) -> None:
    if prefix != DYNAMIC_HOSTNAME and not is_dns_label(prefix.lower()):
        raise InvalidRequest(
            f"hostname must be 'dynamic' or a DNS label (letters, digits and inner hyphens, "
            f"at most {MAX_LABEL} characters), not {prefix!r}"
        )


def _label(base: str, suffix: str) -> str:
    room = MAX_LABEL - len(suffix)
    return (base[:room].strip("-") or "vm") + suffix


def hostname_for(box: Box, number: int, domain: str) -> str:
    """The FQDN set inside the guest: `_` of the vmID becomes `-`, as DNS requires."""
    prefix = box.definition.hostname
    if prefix == DYNAMIC_HOSTNAME:
        base = box.box_id.replace("_", "-").lower().strip("-")
    else:
        base = prefix.lower()
    return f"{_label(base, f'-{number}')}.{domain}"


@dataclass(frozen=True)
class IpPool:
    """Addresses for private networks: never the network, broadcast or host-side ones."""

    network: IPv4Network
    reserved: frozenset[IPv4Address] = frozenset()

    @classmethod
    def with_host_sides(cls, network: IPv4Network) -> IpPool:
        """Reserve the first and last host addresses: the docker gateway and the lxc bridge."""
        first = network.network_address + 1
        last = network.broadcast_address - 1
        return cls(network, frozenset({first, last}))

    def allocate(self, leased: Set[IPv4Address]) -> IPv4Address:
        taken = {int(address) for address in (*leased, *self.reserved)}
        first, last = int(self.network.network_address) + 1, int(self.network.broadcast_address)
        if self.network.prefixlen >= 31:
            first, last = int(self.network.network_address), last + 1
        for number in range(first, last):
            if number not in taken:
                return IPv4Address(number)
        raise PoolExhausted(
            f"no free address left in {self.network} ({len(leased)} leased, "
            f"{len(self.reserved)} reserved for the host)"
        )


_BOX_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
MAX_BOX_NAME = 200


def check_definition(definition: BoxDefinition) -> None:
    """Refuse what Vagrant or the guest could misread: odd box names, NULs, bad hostnames."""
    if not _BOX_NAME.match(definition.box) or len(definition.box) > MAX_BOX_NAME:
        raise InvalidRequest(
            f"box must be a Vagrant box name ('name' or 'org/name': letters, digits and . _ -, "
            f"starting with a letter or digit, at most {MAX_BOX_NAME} characters), "
            f"not {definition.box!r}"
        )
    check_hostname_prefix(definition.hostname)
    for text in _texts(definition):
        if "\x00" in text:
            raise InvalidRequest("strings in a box definition must not contain NUL characters")


def _texts(definition: BoxDefinition) -> list[str]:
    provisioners = (*definition.files, *definition.puppet, *definition.shell)
    values = [value for p in provisioners for value in vars(p).values()]
    return [value for value in values if isinstance(value, str)]

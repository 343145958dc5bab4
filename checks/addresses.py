"""Which addresses the ``http`` check may request, and which redirects it may follow.

Whoever runs a monitored site controls its DNS and its redirects, so an endpoint could point
the hub at its own network (``http://127.0.0.1:…/admin``, a cloud metadata address). The hub
requests only public addresses unless an endpoint says ``allow_private: true``, and it vets
them where they are resolved: :class:`Vetted` is the connector's resolver, and the connector
connects only to what it returns, so the address vetted is the address connected to.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NON_PUBLIC = (
    ("is_loopback", "a loopback"),
    ("is_unspecified", "an unspecified"),
    ("is_link_local", "a link-local"),
    ("is_multicast", "a multicast"),
    ("is_private", "a private"),
    ("is_reserved", "a reserved"),
)


class Refused(OSError):
    """The hub does not request this address: it is not public and the endpoint does not say
    ``allow_private: true``. The message names the configured host, never a resolved address."""

    def __init__(self, host: str, kind: str, *, resolved: bool) -> None:
        verb = "resolves to" if resolved else "is"
        super().__init__(
            f"{host} {verb} {kind} address, which the hub does not request; set "
            "allow_private: true on this endpoint if it is meant to be internal"
        )


class Vetted(AbstractResolver):
    """aiohttp's default resolver, refusing non-public addresses unless allowed. The connector
    connects only to what this returns, so the address vetted is the address connected to; it
    remembers them for the certificate handshake."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self.resolver = aiohttp.DefaultResolver()
        self.addresses: dict[tuple[str, int], str] = {}

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self.resolver.resolve(host, port, family)
        for result in found:
            self.vet(host, result["host"], resolved=True)
        if found:
            self.addresses[(host, port)] = found[0]["host"]
        return found

    def vet(self, host: str, address: str, *, resolved: bool) -> None:
        kind = non_public(address)
        if kind is not None and not self.allow_private:
            raise Refused(host, kind, resolved=resolved)

    def address(self, host: str, port: int) -> str | None:
        """The vetted address a request to ``host`` went to (an IP literal is its own)."""
        return host if is_ip(host) else self.addresses.get((host, port))

    async def close(self) -> None:
        await self.resolver.close()


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def non_public(address: str) -> str | None:
    """What kind of non-public address ``address`` is ("a loopback", "a private", …), or None
    when it is public. IPv4 inside IPv6 (mapped, 6to4, NAT64) is judged as the IPv4 address."""
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(
            address.split("%", 1)[0]
        )
    except ValueError:
        return "an unrecognised"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        else:
            ip = ip.ipv4_mapped or ip.sixtofour or ip
    for test, kind in _NON_PUBLIC:
        if getattr(ip, test):
            return kind
    return None if ip.is_global else "a non-public"


def same_site(url: str, target: str) -> bool:
    """Whether ``target`` is on ``url``'s host and port, or its https upgrade on port 443."""
    here, there = urlsplit(url), urlsplit(target)
    try:
        ports = (here.port or default_port(here.scheme), there.port or default_port(there.scheme))
    except ValueError:
        return False
    if "@" in there.netloc or there.hostname != here.hostname:
        return False
    if (here.scheme, ports[0]) == (there.scheme, ports[1]):
        return True
    return (here.scheme, there.scheme, ports[1]) == ("http", "https", 443)


def default_port(scheme: str) -> int | None:
    return {"http": 80, "https": 443}.get(scheme)

"""Where a webhook may be sent: the address checks, at creation and again at every delivery.

A URL is accepted only if it is plain: `http` or `https`, a host, an optional port, a path and
query of printable ASCII (anything else percent-encoded; an international domain name in its
`xn--` form), at most `url_length_max` characters, with no user name or password (they would
be stored and logged in clear) and no fragment (it is never sent). A host that is all digits and
dots but no IP address (`2130706433`, `0x7f.1`: some resolvers read them as 127.0.0.1) is refused,
and so is an IPv6 literal with a zone id (`[fe80::1%25eth0]`): a zone names a network interface
of the machine sending, which means nothing in a URL stored for any machine to use.

Unless `LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS` is set, the ledger sends nothing to loopback,
private, link-local, shared, multicast or reserved addresses, so an admin token cannot make the
server call into its own network. A host name is resolved at each delivery, every address it
resolves to must be public, and the connection goes to the address just checked (a name that
changes its answer between the check and the connection gains nothing).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from ledger.errors import ValidationError

__all__ = ["Target", "TargetRefused", "check_url", "resolve", "url_length_max"]

url_length_max = 2000
_PRINTABLE_ASCII = re.compile(r"[\x21-\x7e]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DEFAULT_PORTS = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """A delivery's host resolves to an address the ledger does not send to, or not at all."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str          # as written (lower case), without brackets for an IPv6 literal
    port: int
    path_and_query: str


def _refuse(reason: str) -> ValidationError:
    return ValidationError(f"url {reason}", field="url")


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def public(address: IPAddress) -> bool:
    """Whether an address is on the public internet (IPv4 inside IPv6 judged as IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(url: object, *, allow_private_targets: bool) -> Target:
    """The URL's parts if the ledger may send to it; else a ValidationError saying why not."""
    if not isinstance(url, str):
        raise _refuse("must be text")
    if not 1 <= len(url) <= url_length_max:
        raise _refuse(f"must be 1 to {url_length_max} characters, got {len(url)}")
    if not _PRINTABLE_ASCII.fullmatch(url):
        raise _refuse("may hold only printable ASCII without spaces (percent-encode the rest; "
                      "a domain name in its xn-- form)")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. brackets around something other than an IPv6 address
        raise _refuse(f"is not a URL ({exc}); an IPv6 address goes in brackets, nothing else does") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _refuse("must start with http:// or https://")
    if "#" in url:
        raise _refuse("may not have a fragment (#...)")
    if "@" in parts.netloc:
        raise _refuse("may not carry a user name or password")
    host = (parts.hostname or "").lower()
    if not host:
        raise _refuse("must name a host")
    try:
        port = parts.port if parts.port is not None else _DEFAULT_PORTS[scheme]
    except ValueError:
        raise _refuse("has a port that is not a number from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise _refuse("has a port that is not a number from 1 to 65535")
    address = _literal(host)
    if parts.netloc.startswith("[") != (isinstance(address, ipaddress.IPv6Address)):
        raise _refuse("has an IPv6 address outside brackets, or brackets around something else")
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise _refuse("has an IPv6 address with a zone id (%...): a zone names an interface of the sending "
                      "machine, not a target")
    if address is None:
        labels = host.split(".")
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise _refuse("has a host that is neither a domain name nor an IP address")
        if labels[-1].isdigit() or labels[-1].startswith("0x"):
            raise _refuse("has a host that looks like a number but is no IP address")
        if not allow_private_targets and (host == "localhost" or host.endswith(".localhost")):
            raise _refuse("names this machine (set LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS to allow it)")
    elif not allow_private_targets and not public(address):
        raise _refuse("is not a public address (set LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS to allow "
                      "loopback and private addresses)")
    path = parts.path or "/"
    return Target(scheme, host, port, path + (f"?{parts.query}" if parts.query else ""))


def resolve(target: Target, *, allow_private_targets: bool) -> list[tuple[int, str]]:
    """(address family, address) to connect to, each one allowed; TargetRefused if none may be used."""
    try:
        found = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise TargetRefused(f"{target.host} does not resolve: {exc}") from None
    addresses = [(int(family), str(sockaddr[0])) for family, _, _, _, sockaddr in found
                 if family in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise TargetRefused(f"{target.host} has no IP address")
    if not allow_private_targets:
        blocked = [a for _, a in addresses if not public(ipaddress.ip_address(a.split("%")[0]))]
        if blocked:
            raise TargetRefused(f"{target.host} resolves to {blocked[0]}, which is not a public address "
                                "(set LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS to allow it)")
    return addresses

"""The SSRF guard for outbound webhooks.

Two checks, because a URL is only a promise about where a request will go:

- at creation (``check_url``): only http and https, a host, no credentials, and a literal address
  (or ``localhost``) outside ``RELAY_WEBHOOK_ALLOW_CIDRS`` refused at once, with a clear error;
  the C library's other spellings of an IPv4 address (``2130706433``, ``0x7f.1``, ``127.1``) are
  literal addresses too;
- at send time (``GuardedTransport``): the host name is resolved, *every* address it resolves to is
  checked, and the connection goes to the checked address itself (the Host header and TLS SNI keep
  the name). A name that resolves to a public address when the subscription is made and to
  169.254.169.254 when the event is sent (DNS rebinding) is therefore refused, because nothing
  resolves the name a second time between the check and the connect.

Both judge the host the HTTP client would connect to, as httpx reads it (``URL.raw_host``): after
IDNA, where ``127。0。0。1`` (ideographic, fullwidth or halfwidth full stops) is ``127.0.0.1``, and
never a prefix of it. A host with ``%`` (an IPv6 zone id, or a percent-escape that the resolver
would look up as part of a name, as in ``8.8.8.8%25name``) and a name with characters no DNS name
has are refused outright; a literal address is connected to in the form it was judged in.

Refused unless allowed: everything that is not globally routable (private, loopback, link-local
with the cloud metadata address, CGNAT 100.64/10, unspecified, reserved, IPv6 loopback and
unique-local fc00::/7, documentation ranges), reserved IPv6 ranges (IPv4-compatible ::a.b.c.d
among them) and multicast. IPv6 addresses that carry an IPv4 address and reach it (IPv4-mapped,
NAT64 64:ff9b::/96, 6to4 2002::/16) are judged as the IPv4 address they carry.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

import httpx

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT_SECONDS = 5.0
ALLOW_HINT = "see RELAY_WEBHOOK_ALLOW_CIDRS"
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
NAT64 = ipaddress.ip_network("64:ff9b::/96")
# What the C library (and so the resolver) also reads as an IPv4 address: 1 to 4 parts, each decimal,
# octal (leading 0) or hex (0x): 2130706433, 0x7f.1, 017700000001, 127.1 are all 127.0.0.1.
_IPV4_SPELLING = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)
# A host name as a resolver reads it (underscores are not DNS but do occur in service names).
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?", re.IGNORECASE)


class SsrfRefused(httpx.TransportError):
    """The destination is not one the relay may send to. Raised before any connection is made."""


def _unmapped(address: Address) -> Address:
    """The IPv4 address an IPv6 one carries and reaches (mapped, NAT64, 6to4), else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
    return address


def address_allowed(address: Address, allow: Iterable[Network] = ()) -> bool:
    address = _unmapped(address)
    if any(address in net for net in allow):
        return True
    # Reserved IPv6 ranges (IPv4-compatible ::a.b.c.d, SIIT, local-use NAT64) count as global in
    # some Python versions; none of them is a place a webhook lives.
    return address.is_global and not address.is_multicast and not address.is_reserved


def _literal(host: str) -> Address | None:
    """The address ``host`` (as the client connects to it: no brackets) spells, or None for a name.

    The whole host, less one final dot: ``8.8.8.8%25name`` is not 8.8.8.8 but a name the resolver
    looks up whole, and ``fe80::1%eth0`` (an address with a zone) is not one the relay connects to.
    """
    host = host.removesuffix(".")
    if "%" in host:
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _IPV4_SPELLING.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def connect_host(url: httpx.URL) -> str:
    """The host the HTTP client connects to for ``url``: IDNA-encoded, IPv6 without brackets."""
    return url.raw_host.decode("ascii")


def host_refusal(host: str) -> str | None:
    """Why ``host`` (from ``connect_host``) is refused whatever it resolves to, or None."""
    if "%" in host:
        return f"the host {host[:80]!r} has a '%' (a zone id or an escape); no such host is accepted"
    if _literal(host) is None and not _NAME.fullmatch(host):
        return f"the host {host[:80]!r} is neither an address nor a DNS name"
    return None


def check_url(url: str, allow: Iterable[Network] = ()) -> str | None:
    """Why ``url`` may not be a webhook destination, or None when it may (pending the send-time check)."""
    if len(url) > 2048:
        return "the URL is longer than 2048 characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return "only http and https URLs are accepted"
    try:
        # As the dispatcher builds it: a URL it cannot send is refused now, and its host is judged
        # as the client reads it (after IDNA), not as urlsplit does.
        target = httpx.Request("POST", url).url
    except (httpx.InvalidURL, UnicodeError) as exc:
        return f"not a URL the relay can send to: {exc}"[:200]
    host = connect_host(target).lower()
    if not host or not parts.hostname:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not accepted; authenticate with the signature instead"
    if port == 0:
        return "port 0 is not a destination"
    refusal = host_refusal(host)
    if refusal is not None:
        return refusal
    host = host.rstrip(".")
    allow = tuple(allow)
    literal = _literal(host)
    if literal is not None and not address_allowed(literal, allow):
        return f"the address {_unmapped(literal)} is in a range the relay does not send to ({ALLOW_HINT})"
    loopback = ipaddress.ip_network("127.0.0.0/8")
    if host in LOCAL_NAMES and not any(net.version == 4 and net.overlaps(loopback) for net in allow):
        return f"localhost is not a destination the relay sends to ({ALLOW_HINT})"
    return None


async def resolve(host: str, port: int) -> list[Address]:
    literal = _literal(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError) as exc:
        raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
    seen: dict[str, Address] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]
        seen.setdefault(text, ipaddress.ip_address(text))
    return list(seen.values())


class GuardedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that resolves, checks, and connects to the checked address only."""

    def __init__(
        self,
        allow: Iterable[Network] = (),
        inner: httpx.AsyncBaseTransport | None = None,
        resolver: Callable[[str, int], Awaitable[list[Address]]] | None = None,
    ) -> None:
        self._allow = tuple(allow)
        self._inner = inner or httpx.AsyncHTTPTransport(retries=0)
        self._resolve = resolver or resolve

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise SsrfRefused(f"scheme {url.scheme!r} is not allowed", request=request)
        host = connect_host(url)
        refusal = host_refusal(host)
        if refusal is not None:
            raise SsrfRefused(refusal, request=request)
        port = url.port or (443 if url.scheme == "https" else 80)
        literal = _literal(host)
        addresses = [literal] if literal is not None else await self._resolve(host, port)
        if not addresses:
            raise httpx.ConnectError(f"{host} resolves to no address", request=request)
        refused = [a for a in addresses if not address_allowed(a, self._allow)]
        if refused:
            raise SsrfRefused(f"{host} resolves to {refused[0]}, a refused address", request=request)
        # The inner transport is given an address, never a name: whatever it connects to is what
        # was checked here (a literal in its plain form: 134744072 is sent as 8.8.8.8).
        target = literal if literal is not None else _unmapped(addresses[0])
        if str(target) != host:
            request.url = url.copy_with(host=str(target))
            request.headers["host"] = url.netloc.decode("ascii")
            if url.scheme == "https" and literal is None:
                request.extensions = {**request.extensions, "sni_hostname": host}
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()

"""Rules for which URLs the operator will send credentials to."""

from __future__ import annotations

import ipaddress

import httpx


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, what: str) -> httpx.URL:
    """Parse ``url``; only https, or plain http to a loopback host (the simulator), is accepted.

    Credentials go with every request, so a typo'd ``http://`` would send them in clear text.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        # The exception text may quote the URL, and the URL may carry user info: keep it out.
        raise ValueError(f"{what} is not a valid URL ({type(exc).__name__})") from None
    if not parsed.host:
        raise ValueError(f"{what} has no host")
    if parsed.userinfo:
        raise ValueError(f"{what} must not contain user info")
    if parsed.query or parsed.fragment:
        raise ValueError(f"{what} must not have a query or fragment")
    if parsed.scheme == "https":
        return parsed
    if parsed.scheme == "http" and is_loopback_host(parsed.host):
        return parsed
    raise ValueError(
        f"{what} (scheme {parsed.scheme!r}, host {parsed.host!r}) must use https:// "
        "(plain http:// is allowed only for loopback hosts)"
    )

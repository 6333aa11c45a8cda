"""The secret that signs unsubscribe links and VERP bounce addresses, and its rotation.

No secret ships with the code: a signed link is all that stands between a URL and a
suppression, so a secret anyone can read in our source would let anyone unsubscribe the
whole database. Unless ``ACCOUNTFLOW_UNSUBSCRIBE_SECRET`` is set, a random one is generated
into ``<data dir>/link-secrets.json`` (mode 0600) on first use and kept there.

Rotation keeps old links working: the file records every secret taken out of use with the
instant it was retired, and verification accepts a retired secret for
``unsubscribe_secret_grace_days`` after that. Setting a new value in the environment
retires the previous one the first time it is read; `accountflow team rotate-link-secret`
rotates a generated one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from config.settings import Settings

RING_FILE = "link-secrets.json"
# Values published as examples (ours before this module, and the usual placeholders):
# a secret anyone can read is no secret.
KNOWN_SECRETS = frozenset(
    {"change-me-in-production", "change-me", "changeme", "secret", "unsubscribe", "test"}
)
MIN_SECRET_CHARS = 16


class InsecureLinkSecretError(RuntimeError):
    """Links would be signed with a secret an attacker knows, where an attacker can reach."""


@dataclass(frozen=True)
class RetiredSecret:
    secret: str
    retired_at: datetime


@dataclass(frozen=True)
class LinkKeyRing:
    """The secret signing new links, and those retired with the instant they were."""

    current: str
    retired: tuple[RetiredSecret, ...] = field(default=())

    def accepted(self, as_of: datetime, grace: timedelta) -> list[str]:
        """Secrets a link may be signed with at ``as_of``: current first, then retired ones
        still within their grace period, most recently retired first."""
        still = [r for r in self.retired if r.retired_at + grace > as_of]
        newest_first = sorted(still, key=lambda r: r.retired_at, reverse=True)
        return [self.current, *(r.secret for r in newest_first if r.secret != self.current)]

    def rotated(self, new: str, as_of: datetime) -> LinkKeyRing:
        if new == self.current:
            return self
        kept = tuple(r for r in self.retired if r.secret != new)
        return LinkKeyRing(new, (*kept, RetiredSecret(self.current, as_of)))

    def to_json(self) -> str:
        return json.dumps(
            {
                "current": self.current,
                "retired": [
                    {"secret": r.secret, "retired_at": r.retired_at.isoformat()}
                    for r in self.retired
                ],
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> LinkKeyRing:
        data = json.loads(text)
        return cls(
            str(data["current"]),
            tuple(
                RetiredSecret(str(r["secret"]), datetime.fromisoformat(r["retired_at"]))
                for r in data.get("retired", [])
            ),
        )


def _ring_path(settings: Settings) -> Path:
    return settings.data_dir / RING_FILE


def _write_private(path: Path, text: str, *, replace: bool) -> bool:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically.

    Without ``replace`` the file is only created: if another process created it first,
    nothing is written and False is returned, so two first uses agree on one secret.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".link-secrets-", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _read(path: Path) -> LinkKeyRing | None:
    try:
        return LinkKeyRing.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def link_key_ring(settings: Settings, as_of: datetime | None = None) -> LinkKeyRing:
    """The key ring in force: the configured secret (retiring the previous one if it
    changed), else the generated one, generated now on first use."""
    path = _ring_path(settings)
    now = as_of or datetime.now(UTC)
    ring = _read(path)
    configured = settings.unsubscribe_secret
    if configured is not None:
        value = configured.get_secret_value()
        if ring is None:
            _write_private(path, LinkKeyRing(value).to_json(), replace=False)
            return _read(path) or LinkKeyRing(value)
        if ring.current != value:
            ring = ring.rotated(value, now)
            _write_private(path, ring.to_json(), replace=True)
        return ring
    if ring is None:
        _write_private(path, LinkKeyRing(secrets.token_urlsafe(32)).to_json(), replace=False)
        ring = _read(path)
        assert ring is not None  # created by us or by whoever won the race
    return ring


def rotate_generated_secret(settings: Settings, as_of: datetime | None = None) -> LinkKeyRing:
    """Retire the generated secret for a new random one (links keep working for the grace
    period). A configured secret is rotated by configuring a new one instead."""
    if settings.unsubscribe_secret is not None:
        raise InsecureLinkSecretError(
            "ACCOUNTFLOW_UNSUBSCRIBE_SECRET is set: rotate by setting a new value; the old one"
            f" stays valid for {settings.unsubscribe_secret_grace_days:g} days"
        )
    ring = link_key_ring(settings, as_of).rotated(
        secrets.token_urlsafe(32), as_of or datetime.now(UTC)
    )
    _write_private(_ring_path(settings), ring.to_json(), replace=True)
    return ring


def accepted_secrets(settings: Settings, as_of: datetime | None = None) -> list[str]:
    grace = timedelta(days=settings.unsubscribe_secret_grace_days)
    return link_key_ring(settings, as_of).accepted(as_of or datetime.now(UTC), grace)


def is_loopback(host: str | None) -> bool:
    """``localhost`` or a loopback address: reachable from this machine only."""
    if not host:
        return False
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def weak_reason(secret: str) -> str | None:
    """Why ``secret`` must not sign public links, or None if it may."""
    if not secret.strip():
        return "is empty"
    if secret.strip().lower() in KNOWN_SECRETS:
        return "is a published example value"
    if len(secret) < MIN_SECRET_CHARS:
        return f"is shorter than {MIN_SECRET_CHARS} characters"
    return None


def require_safe_link_secret(settings: Settings, exposed_host: str | None = None) -> None:
    """Refuse to serve or send links signed with a known or empty secret, unless everything
    stays on loopback. ``exposed_host`` is where the service listens (``accountflow web``);
    by default it is the host of ``public_base_url``, where the links in a mail point."""
    host = exposed_host if exposed_host is not None else urlsplit(settings.public_base_url).hostname
    if settings.unsubscribe_secret is None or is_loopback(host):
        return
    reason = weak_reason(settings.unsubscribe_secret.get_secret_value())
    if reason is not None:
        raise InsecureLinkSecretError(
            f"ACCOUNTFLOW_UNSUBSCRIBE_SECRET {reason}: anyone could forge unsubscribe links"
            f" for {host}. Unset it (a random secret is then generated into"
            f" {_ring_path(settings)}) or set a long random value, e.g. `python -c 'import"
            " secrets; print(secrets.token_urlsafe(32))'`."
        )

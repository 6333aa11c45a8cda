"""Send faxes through an HTTP fax gateway shaped like Phaxio/Sinch, and read back results.

The generic API this client speaks (adapt the paths, not the callers, for a vendor):

- ``POST {base}/faxes`` multipart: ``to`` (E.164), ``file`` (PDF), ``header_text``,
  ``tag[outbox_id]``, ``callback_url``; answers ``{"success": true, "data": {"id": ..}}``.
- ``GET {base}/faxes/{id}`` and ``GET {base}/faxes?tag[outbox_id]=..``: fax records
  ``{"id", "status", "tags", "error_type", "error_code", "error_message"}``.
- Callbacks POST ``{"fax": <record>}`` signed with ``X-Fax-Signature: sha256=<hex HMAC
  of the raw body>``.

A fax costs money and annoys twice, so a resend is always preceded by a lookup of our
tag: if the gateway already holds a live or delivered fax for this outbox row, that one
is reported instead of sending again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from config.settings import FaxSettings
from connectors.smtp_sender import SendOutcome, SendResult

if TYPE_CHECKING:
    # Imported where a fax is sent: the outbox store reads fax records (and so this
    # module) for every command that lists outreach, most of which never send one.
    import requests

SIGNATURE_HEADER = "X-Fax-Signature"
TAG_KEY = "outbox_id"


class FaxState(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"


_STATES = {
    "queued": FaxState.PENDING,
    "pendingbatch": FaxState.PENDING,
    "inprogress": FaxState.PENDING,
    "success": FaxState.SUCCESS,
    "partialsuccess": FaxState.PARTIAL,
    "failure": FaxState.FAILURE,
}
# Failures worth another try later: the line, not the number, was the problem.
_RETRYABLE_ERROR_TYPES = frozenset({"lineerror", "faxerror", "generalerror"})
_RETRYABLE_ERROR_CODES = frozenset({"busy", "no answer", "noanswer", "line busy"})


@dataclass(frozen=True)
class FaxDocument:
    """A fax ready for the gateway: E.164 number, PDF, header line and our tag."""

    outbox_id: int
    to: str
    pdf: bytes
    header_text: str
    tag: str


@dataclass(frozen=True)
class FaxRecord:
    """The gateway's view of one fax."""

    fax_id: str
    status: str
    tag: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def state(self) -> FaxState:
        return _STATES.get(self.status.lower(), FaxState.PENDING)


def record_from_json(data: dict[str, Any]) -> FaxRecord:
    tags = data.get("tags") or {}
    tag = tags.get(TAG_KEY) if isinstance(tags, dict) else None
    return FaxRecord(
        fax_id=str(data["id"]),
        status=str(data.get("status", "queued")),
        tag=None if tag is None else str(tag),
        error_type=data.get("error_type"),
        error_code=None if data.get("error_code") is None else str(data.get("error_code")),
        error_message=data.get("error_message"),
    )


def final_result(outbox_id: int, record: FaxRecord) -> SendResult | None:
    """The outbox outcome a final fax status means; ``None`` while still in flight.

    A partial success is ``unknown``: the first pages (opt-out notice included) reached
    the recipient, so a machine must not send the whole fax again.
    """
    detail = " ".join(
        part for part in (record.error_type, record.error_code, record.error_message) if part
    )
    match record.state:
        case FaxState.PENDING:
            return None
        case FaxState.SUCCESS:
            return SendResult(outbox_id, SendOutcome.SENT, provider_id=record.fax_id)
        case FaxState.PARTIAL:
            return SendResult(
                outbox_id, SendOutcome.UNKNOWN, provider_id=record.fax_id, detail=detail
            )
    retryable = (record.error_type or "").lower() in _RETRYABLE_ERROR_TYPES or (
        record.error_code or ""
    ).lower() in _RETRYABLE_ERROR_CODES
    outcome = SendOutcome.RETRY if retryable else SendOutcome.FAILED_PERMANENT
    return SendResult(outbox_id, outcome, provider_id=record.fax_id, detail=detail or "failure")


def _http_result(outbox_id: int, response: requests.Response) -> SendResult:
    detail = response.text[:500]
    code = response.status_code
    # 408/429 and 5xx are the gateway's trouble; 401/403 are our config: all retry
    # (a resend is preceded by a tag lookup, so a retry cannot double a fax). Other 4xx
    # are verdicts on this fax (bad number, bad document).
    if code in (401, 403, 408, 429) or code >= 500:
        return SendResult(outbox_id, SendOutcome.RETRY, code=code, detail=detail)
    return SendResult(outbox_id, SendOutcome.FAILED_PERMANENT, code=code, detail=detail)


class FaxGatewayError(RuntimeError):
    """The gateway could not answer a status or lookup query."""


class FaxGateway:
    """Client for the gateway; ``session`` carries auth and connection reuse."""

    def __init__(
        self,
        session: requests.Session,
        base_url: str,
        *,
        api_key: SecretStr | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key.get_secret_value()}"} if api_key else {}

    @classmethod
    def from_settings(cls, settings: FaxSettings, session: requests.Session) -> FaxGateway:
        if not settings.base_url:
            raise ValueError("fax.base_url is not configured")
        timeout = settings.timeout_seconds
        return cls(
            session,
            settings.base_url,
            api_key=settings.api_key,
            timeout=(min(5.0, timeout), timeout),
        )

    def send(
        self, fax: FaxDocument, *, callback_url: str | None = None, attempt: int = 1
    ) -> SendResult:
        """Submit one fax; ``sent`` means the gateway accepted it (final status comes later).

        From the second attempt on, the gateway is asked first whether it already holds a
        fax with our tag; a failed lookup means ``retry``, never a blind resend.
        """
        if any(ch in fax.header_text for ch in "\r\n\x00"):
            return SendResult(
                fax.outbox_id, SendOutcome.FAILED_PERMANENT, detail="line break in header text"
            )
        if attempt > 1:
            try:
                existing = self.find_by_tag(fax.tag)
            except FaxGatewayError as exc:
                return SendResult(
                    fax.outbox_id, SendOutcome.RETRY, detail=f"lookup before resend: {exc}"
                )
            for record in existing:
                if record.state is not FaxState.FAILURE:
                    result = final_result(fax.outbox_id, record)
                    return result or SendResult(
                        fax.outbox_id,
                        SendOutcome.SENT,
                        provider_id=record.fax_id,
                        detail="found by tag; not resent",
                    )
        import requests

        data = {"to": fax.to, "header_text": fax.header_text, f"tag[{TAG_KEY}]": fax.tag}
        if callback_url:
            data["callback_url"] = callback_url
        try:
            response = self._session.post(
                f"{self._base}/faxes",
                data=data,
                files={"file": (f"{fax.tag}.pdf", fax.pdf, "application/pdf")},
                headers=self._headers,
                timeout=self._timeout,
            )
        except requests.ReadTimeout as exc:
            # The request went out whole; the gateway may have queued it.
            return SendResult(
                fax.outbox_id, SendOutcome.UNKNOWN, detail=f"no answer after upload: {exc}"
            )
        except requests.RequestException as exc:
            return SendResult(
                fax.outbox_id, SendOutcome.RETRY, detail=f"{type(exc).__name__}: {exc}"
            )
        if not response.ok:
            return _http_result(fax.outbox_id, response)
        try:
            fax_id = str(response.json()["data"]["id"])
        except (ValueError, KeyError, TypeError):
            return SendResult(
                fax.outbox_id,
                SendOutcome.UNKNOWN,
                code=response.status_code,
                detail=f"accepted without a fax id: {response.text[:200]}",
            )
        return SendResult(
            fax.outbox_id, SendOutcome.SENT, provider_id=fax_id, code=response.status_code
        )

    def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        import requests

        try:
            response = self._session.get(
                f"{self._base}{path}", params=params, headers=self._headers, timeout=self._timeout
            )
            response.raise_for_status()
            return response.json()["data"]
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise FaxGatewayError(f"GET {path}: {type(exc).__name__}: {exc}") from exc

    def get_status(self, fax_id: str) -> FaxRecord:
        """The gateway's current record of one fax (for polling when callbacks are off)."""
        return record_from_json(self._get(f"/faxes/{fax_id}"))

    def find_by_tag(self, tag: str) -> list[FaxRecord]:
        """Every fax the gateway holds with our outbox tag, newest first as it lists them."""
        data = self._get("/faxes", params={f"tag[{TAG_KEY}]": tag})
        if not isinstance(data, list):
            raise FaxGatewayError("GET /faxes: expected a list")
        return [record_from_json(item) for item in data]


def callback_signature(body: bytes, secret: SecretStr) -> str:
    """The header value a gateway sends with ``body`` (used by tests and local demos)."""
    mac = hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_callback(body: bytes, signature: str | None, secret: SecretStr | None) -> bool:
    """Whether a callback body was signed with our secret; unsigned or unconfigured: no."""
    if not signature or secret is None or not secret.get_secret_value():
        return False
    expected = callback_signature(body, secret)
    provided = signature.strip()
    if not provided.startswith("sha256="):
        provided = f"sha256={provided}"
    return hmac.compare_digest(provided.encode(), expected.encode())


def parse_callback(body: bytes) -> FaxRecord:
    """The fax record in a (verified) callback body; ``ValueError`` if malformed."""
    try:
        payload = json.loads(body)
        return record_from_json(payload["fax"])
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed fax callback: {exc}") from exc

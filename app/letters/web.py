"""What the citizen flow's pages and API share: the client address, rate limits, the bounded
request body, and the validation of the sender's form into per-field, translated messages."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import parse_qsl

from pydantic import ValidationError
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import mail
from app.config import Settings
from app.errors import AppError, InvalidInput
from app.i18n import gettext as _
from app.letters.schemas import SenderIn
from app.ratelimit import RateLimiter, Rule, networks

# The citizen's requests are small; anything bigger is refused before it is read whole.
MAX_BODY = 32 * 1024
LIMITED_PREFIXES = (
    "/campaigns/",
    "/confirm/",
    "/status/",
    "/api/v1/campaigns/",
    "/api/v1/confirmations",
    "/api/v1/status/",
)
# The honeypot: a field hidden from people by CSS; a bot that fills it is told "done".
HONEYPOT = "website"
MAX_FIELDS = 1000  # as Starlette's form parser
URLENCODED = "application/x-www-form-urlencoded"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class NotConfigured(AppError):
    status_code = 503
    code = "not_configured"


class BodyLimitMiddleware:
    """Refuse (413) request bodies over MAX_BODY on the citizen flow's paths."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(LIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await PlainTextResponse("Request body too large.", status_code=413)(
                scope, receive, send
            )
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise PayloadTooLarge("Request body too large.")
            return message

        await self.app(scope, bounded, send)


async def read_form(request: Request) -> FormData:
    """The fields of a form post. URL-encoded bodies (what the citizen's forms send) are parsed
    by the standard library, as Starlette's parser would (names and values percent-decoded as
    UTF-8, bad bytes replaced, at most MAX_FIELDS), about five times quicker on a form of 50
    deputies; any other body goes to Starlette."""
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != URLENCODED:
        return await request.form()
    body = await request.body()  # bounded by BodyLimitMiddleware
    try:
        pairs = parse_qsl(
            body.decode("latin-1"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="replace",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as exc:
        message = f"Too many fields. Maximum number of fields is {MAX_FIELDS}."
        raise HTTPException(400, message) from exc
    items: list[tuple[str, str | UploadFile]] = list(pairs)
    return FormData(items)


# --- client address and limits -----------------------------------------------------------------


@lru_cache(maxsize=8)
def _trusted(spec: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip()
    )


def _in(address: str, nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def client_address(request: Request, settings: Settings) -> str:
    """The direct peer, or the address a trusted proxy forwarded (the rightmost untrusted one)."""
    peer = request.client.host if request.client else "unknown"
    trusted = _trusted(settings.trusted_proxies)
    if not trusted or not _in(peer, trusted):
        return peer
    forwarded = [
        part.strip()
        for header in request.headers.getlist("x-forwarded-for")
        for part in header.split(",")
        if part.strip()
    ]
    for address in reversed(forwarded):
        if not _in(address, trusted):
            return address
    return peer


@lru_cache(maxsize=64)
def _rule(name: str, spec: str) -> Rule:
    return Rule.parse(name, spec)


async def limit_submission(
    limiter: RateLimiter, settings: Settings, *, address: str, email: str
) -> None:
    """Count a submission against every rule; TooManyRequests (429) when one is exceeded."""
    specs = {
        "address": settings.limit_submit_per_address,
        "net24": settings.limit_submit_per_net24,
        "net64": settings.limit_submit_per_net24,
        "net16": settings.limit_submit_per_net16,
        "net48": settings.limit_submit_per_net16,
    }
    checks = [
        (_rule(f"submit-{label}", specs[label]), key)
        for label, key in networks(address)
        if specs.get(label)
    ]
    if settings.limit_submit_per_email:
        checks.append(
            (_rule("submit-email", settings.limit_submit_per_email), email.strip().lower())
        )
    await limiter.hit(
        checks,
        _(
            "Too many letters were sent from your connection or to this address. "
            "Please wait a little and try again."
        ),
    )


async def limit_links(limiter: RateLimiter, settings: Settings, *, address: str) -> None:
    """Confirmation, status, cancel and erase: per client address."""
    if settings.limit_links_per_address:
        await limiter.hit(
            [(_rule("links-address", settings.limit_links_per_address), address)],
            _("Too many requests from your connection. Please wait a little and try again."),
        )


# --- the sender's form -------------------------------------------------------------------------


def field_messages() -> dict[str, str]:
    return {
        "full_name": _("Enter your full name: 3 to 120 characters, with letters, on one line."),
        "email": _("Enter a valid e-mail address: the confirmation link is sent there."),
        "locality": _("Enter your town or village: 2 to 120 characters, on one line."),
        "postal_address": _(
            "Enter your postal address (up to 300 characters, on one line): "
            "this campaign's letter includes it."
        ),
        "consent": _("Tick the box to agree to the privacy notice."),
        "reply_to": _("Tick the box, or leave it empty, to say whether deputies may reply."),
        "deputies": _("Choose at least one deputy."),
    }


@dataclass
class SenderForm:
    """The raw values (to show them again), the cleaned sender, and errors by field."""

    values: dict[str, str]
    deputy_ids: list[int]
    consent: bool
    reply_to: bool
    sender: SenderIn | None = None
    errors: dict[str, str] = field(default_factory=dict)


def ticked(value: object) -> bool | None:
    """A checkbox of a form: ticked (it sends `yes`), not ticked (it sends nothing), or None for
    anything else, which no browser sends."""
    if value is None:
        return False
    return True if value == "yes" else None


def _ids(raw: Iterable[object]) -> list[int] | None:
    """Distinct ids in their order; None if any is not a number."""
    ids: dict[int, None] = {}
    for value in raw:
        text = str(value).strip()
        if not text.isdigit() or len(text) > 10:
            return None
        ids[int(text)] = None
    return list(ids)


def validate_sender(
    *,
    values: dict[str, str],
    deputy_ids: Iterable[object],
    allowed_deputy_ids: set[int],
    consent: bool | None,
    reply_to: bool | None,
    requires_address: bool,
) -> SenderForm:
    """Check everything; the errors name each field with a message in the visitor's language.
    A box that is None held something other than a tick (see `ticked`)."""
    messages = field_messages()
    values = {k: values.get(k, "")[:1000] for k in ("full_name", "email", "locality")} | {
        "postal_address": values.get("postal_address", "")[:1000] if requires_address else ""
    }
    ids = _ids(deputy_ids)
    form = SenderForm(values, ids or [], consent is True, reply_to is True)
    if not ids or not set(ids) <= allowed_deputy_ids:
        form.errors["deputies"] = messages["deputies"]
    if consent is not True:
        form.errors["consent"] = messages["consent"]
    if reply_to is None:
        form.errors["reply_to"] = messages["reply_to"]
    try:
        form.sender = SenderIn.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "full_name"
            form.errors.setdefault(name, messages.get(name, str(error["msg"])))
    if form.sender is not None:
        if requires_address and len(form.sender.postal_address) < 5:
            form.errors["postal_address"] = messages["postal_address"]
        try:
            mail.check_address(form.sender.email, field="email")
        except InvalidInput:
            form.errors["email"] = messages["email"]
    if form.errors:
        form.sender = None
    return form


def public_base(request: Request, settings: Settings) -> str:
    """The base URL for links in e-mails (Settings.public_base_url), never the request's: a
    forged Host header would put another site's address in the e-mail."""
    base = settings.public_base_url
    if base is None:
        raise NotConfigured("APPEALS_PUBLIC_URL is not set: links cannot be sent.")
    return base

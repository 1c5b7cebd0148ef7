"""E-mail assembled by hand: the RFC 5322 message of a letter (built once, when the letter is
created), the header and body encodings the confirmation e-mail reuses, address checks,
Message-IDs and DKIM signing.

Infrastructure under the domain packages, importing none of them: letters build their messages
and the confirmation e-mail with it, delivery sends the bytes as stored.

`email.message.EmailMessage` costs about 1.6 ms a letter; the header helpers of the email package
(RFC 2047 encoded words, address formatting, dates) applied to a fixed layout cost a few dozen
microseconds and give the same bytes a mail client expects. Everything that comes from the public
(the sender's name and address) is cleaned or refused here, so that no value can add a header.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import time
from dataclasses import dataclass
from email.charset import BASE64, Charset
from email.header import Header
from email.utils import format_datetime, formataddr
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.config import Settings
from app.errors import InvalidInput

UTF8 = Charset("utf-8")
UTF8.header_encoding = BASE64
UTF8.body_encoding = BASE64

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: never in a header.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
# A conservative addr-spec: what a citizen may give as a reply address (validated upstream too).
_ADDRESS = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$"
)
MAX_NAME = 200
CAMPAIGN_HEADER = "X-Appeals-Campaign"


@dataclass(frozen=True, slots=True)
class DkimKey:
    selector: bytes
    domain: bytes
    private_key: bytes


@lru_cache(maxsize=4)
def load_dkim_key(selector: str, domain: str, path: str) -> DkimKey:
    return DkimKey(selector.encode(), domain.encode(), Path(path).read_bytes())


def dkim_key(settings: Settings) -> DkimKey | None:
    """The configured signing key (read once per process), or None when DKIM is not set up."""
    if not settings.dkim_configured:
        return None
    return load_dkim_key(
        str(settings.dkim_selector), str(settings.dkim_domain), str(settings.dkim_private_key_path)
    )


def clean_text(value: str, *, limit: int = MAX_NAME) -> str:
    """One line of text: control characters (CR, LF, ...) become spaces, runs of blanks one."""
    return " ".join(_CONTROL.sub(" ", value).split())[:limit]


def check_address(address: str, *, field: str) -> str:
    """The address if it is a plain addr-spec; InvalidInput otherwise (never silently fixed)."""
    if len(address) > 254 or not _ADDRESS.match(address) or ".." in address:
        raise InvalidInput("Not a valid e-mail address.", field=field)
    return address


def address_domain(address: str) -> str:
    """The lowercased domain of an address, in its ASCII (IDNA) form."""
    domain = address.rpartition("@")[2].strip().lower()
    return domain if domain.isascii() else domain.encode("idna").decode("ascii")


def new_message_id(mail_from: str) -> str:
    """`<time.random@domain>`: the time in microseconds (hex, as the Date header has it anyway),
    then 128 random bits. IDs made one after another sort one after another, so that the
    unique index on letter.message_id takes a confirmation's 50 letters at its end, not at 50
    random places (a page written each: bench/README.md, sixth round)."""
    return f"<{time.time_ns() // 1000:x}.{os.urandom(16).hex()}@{_domain_of(mail_from)}>"


_domain_of = lru_cache(maxsize=8)(address_domain)


@lru_cache(maxsize=8)
def date_header(date: dt.datetime) -> str:
    # The letters of one confirmation, the confirmation e-mails of one batch, share their time:
    # formatted once.
    return format_datetime(date.astimezone(dt.UTC))


def _mailbox(header: str, name: str, address: str) -> str:
    """`name <address>`, the name quoted (ASCII) or as folded encoded words (anything else)."""
    name = clean_text(name)
    if name.isascii():
        return formataddr((name, address))
    words = Header(name, UTF8, header_name=header).encode(linesep="\r\n")
    last = words.rpartition("\r\n")[2]
    fold = (
        "\r\n"
        if len(last) + len(address) + 3 > 76 - (0 if "\r\n" in words else len(header))
        else ""
    )
    return f"{words}{fold} <{address}>"


# A deputy's To header (public data: deputies' names and addresses are published) is the same in
# every letter to that deputy: encoded once per process. The sender's headers, the subject and the
# campaign header are the same in the 50 letters of one confirmation: encoded once per call of the
# caller's `memo` (never kept beyond it, since they may hold a citizen's name).
_recipient_mailbox = lru_cache(maxsize=16384)(_mailbox)


def _memoized(memo: dict[tuple[str, ...], str] | None, key: tuple[str, ...], make: Any) -> str:
    if memo is None:
        value: str = make(*key[1:])
        return value
    found = memo.get(key)
    if found is None:
        found = memo[key] = make(*key[1:])
    return found


def encode_unstructured(name: str, value: str) -> str:
    # Folded encoded words for non-ASCII; ASCII folded at whitespace. Lines stay under 78.
    return Header(clean_text(value, limit=998), UTF8, header_name=name).encode(linesep="\r\n")


def encode_body(text: str) -> bytes:
    # Base64 keeps Cyrillic text 7-bit clean for any relay and any line length.
    normal = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")
    return base64.encodebytes(normal.encode("utf-8")).replace(b"\n", b"\r\n")


def build_message(
    *,
    mail_from: str,
    sender_name: str,
    sender_email: str | None,
    recipient_name: str,
    recipient_email: str,
    subject: str,
    body: str,
    campaign_id: int,
    campaign_title: str,
    message_id: str,
    date: dt.datetime,
    dkim: DkimKey | None = None,
    memo: dict[tuple[str, ...], str] | None = None,
) -> bytes:
    """The complete message bytes (CRLF line ends), DKIM-signed when a key is given.

    `memo`, a dict the caller keeps for one batch of letters (one confirmation), encodes the
    headers that repeat within it once; the bytes are the same with or without it.
    """
    headers = [
        f"From: {_memoized(memo, ('m', 'From', sender_name, mail_from), _mailbox)}",
        f"To: {_recipient_mailbox('To', recipient_name, recipient_email)}",
    ]
    if sender_email:
        reply_to = _memoized(memo, ("m", "Reply-To", sender_name, sender_email), _mailbox)
        headers.append(f"Reply-To: {reply_to}")
    campaign = f"{campaign_id} {clean_text(campaign_title, limit=300)}"
    headers += [
        f"Subject: {_memoized(memo, ('u', 'Subject', subject), encode_unstructured)}",
        f"Date: {date_header(date)}",
        f"Message-ID: {message_id}",
        f"{CAMPAIGN_HEADER}: "
        + _memoized(memo, ("u", CAMPAIGN_HEADER, campaign), encode_unstructured),
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: base64",
    ]
    message = ("\r\n".join(headers) + "\r\n\r\n").encode("ascii") + encode_body(body)
    if dkim is not None:
        message = sign(message, dkim)
    return message


DKIM_HEADERS = [
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"Reply-To",
    b"MIME-Version",
    b"Content-Type",
    b"Content-Transfer-Encoding",
    CAMPAIGN_HEADER.encode(),
]


def sign(message: bytes, key: DkimKey) -> bytes:
    """Prepend a DKIM-Signature (relaxed/relaxed, rsa-sha256) over the headers we set."""
    import dkim  # type: ignore[import-untyped]

    signature: bytes = dkim.sign(
        message,
        key.selector,
        key.domain,
        key.private_key,
        include_headers=DKIM_HEADERS,
        canonicalize=(b"relaxed", b"relaxed"),
        linesep=b"\r\n",
    )
    return signature + message

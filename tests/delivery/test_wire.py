"""What the worker puts on the wire: the bytes of aiosmtplib's own mail(), rcpt() and data()."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiosmtplib
import pytest

from app.delivery.smtp import Connection, Outcome, Relay
from app.letters.models import FailureClass

# Lines starting with a dot (one alone: the end of DATA if not stuffed), bare LF and CR.
AWKWARD = (
    b"From: a@example.org\r\nTo: b@example.org\r\nSubject: dots\r\n\r\n"
    b".\r\n..two\r\n.leading dot\r\nbare LF\nbare CR\rend . inside\r\n."
)


class Recorder:
    """A scripted SMTP server on loopback that keeps every byte each client sends."""

    def __init__(self) -> None:
        self.streams: list[bytearray] = []
        self.port = 0

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = bytearray()
        self.streams.append(stream)
        writer.write(b"220 recorder ESMTP\r\n")
        in_data = False
        while line := await reader.readline():
            stream += line
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    writer.write(b"250 2.0.0 queued\r\n")
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                writer.write(b"250-recorder\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
            elif verb == b"DATA":
                in_data = True
                writer.write(b"354 go ahead\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 ok\r\n")
        writer.close()

    @classmethod
    @pytest.fixture
    async def running(cls) -> AsyncIterator[Recorder]:
        recorder = cls()
        server = await asyncio.start_server(recorder._client, "127.0.0.1", 0)
        recorder.port = server.sockets[0].getsockname()[1]
        yield recorder
        server.close()
        await server.wait_closed()


recorder = Recorder.running


def _relay(port: int) -> Relay:
    return Relay(
        host="127.0.0.1",
        port=port,
        tls="none",
        username=None,
        password=None,
        ca_file=None,
        connect_timeout=2.0,
        timeout=2.0,
        pool_size=1,
        idle_seconds=60.0,
        is_sink=False,
    )


async def test_the_bytes_on_the_wire_are_those_of_aiosmtplib(recorder: Recorder) -> None:
    envelope = [
        ("appeals@appeals.example", "deputy@duma.example.org", AWKWARD),
        ("appeals@appeals.example", "Other.Deputy+x@Duma.Example.org", b"Subject: hi\r\n\r\nok"),
    ]
    # The worker's connection: two transactions over one connection, then QUIT.
    connection = Connection(_relay(recorder.port))
    for mail_from, rcpt, message in envelope:
        attempt = await connection.send(mail_from=mail_from, rcpt=rcpt, message=message)
        assert attempt.outcome is Outcome.sent
    await connection.close()
    # aiosmtplib as the worker called it before: mail(), rcpt(), data().
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=recorder.port, start_tls=False)
    await smtp.connect()
    for mail_from, rcpt, message in envelope:
        await smtp.mail(mail_from)
        await smtp.rcpt(rcpt)
        await smtp.data(message)
    await smtp.quit()

    ours, theirs = recorder.streams
    assert bytes(ours) == bytes(theirs)
    # Dot-stuffed, CRLF-normalised, and ended once.
    assert b"\r\n..\r\n...two\r\n..leading dot\r\nbare LF\r\nbare CR\r\n" in ours
    assert b"MAIL FROM:<appeals@appeals.example>\r\n" in ours
    assert b"RCPT TO:<Other.Deputy+x@Duma.Example.org>\r\n" in ours


@pytest.mark.parametrize("rcpt", ["иван@пример.рф", "two words@duma.example.org"])
async def test_an_address_smtp_cannot_carry_fails_the_letter_only(
    recorder: Recorder, rcpt: str
) -> None:
    connection = Connection(_relay(recorder.port))
    refused = await connection.send(mail_from="appeals@appeals.example", rcpt=rcpt, message=b"x")
    assert refused.outcome is Outcome.failed
    assert refused.failure is FailureClass.permanent
    # Nothing was sent for it, and the connection still serves the next letter.
    good = await connection.send(
        mail_from="appeals@appeals.example", rcpt="deputy@duma.example.org", message=b"ok"
    )
    assert good.outcome is Outcome.sent
    await connection.close()
    assert rcpt.encode() not in b"".join(recorder.streams)

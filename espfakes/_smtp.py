"""Speak SMTP with aiosmtpd, faster in the two places a send benchmark leans on.

``SMTPApp`` (espfakes/smtp_app.py) serves every connection with ``FastSMTP``, as the Postmark
fake serves HTTP with espfakes/_http.py.
"""

from __future__ import annotations

import asyncio
import re

from aiosmtpd.smtp import SMTP, syntax

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ANGLE_ADDRESS = re.compile(
    rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)", re.DOTALL
)


class FastSMTP(SMTP):
    """Speed up aiosmtpd's two hot spots, relying on its internals; answer as it answers.

    It overrides aiosmtpd's private ``_getaddr`` and re-implements ``smtp_DATA`` on its private
    ``_reader``, ``_set_post_data_state`` and ``_call_handler_hook``;
    tests/espfakes/test_smtp_matches_aiosmtpd.py fails when those change. One difference: a DATA
    line longer than RFC 5321's 1,000 octets is taken, where aiosmtpd refuses it with a 500.

    Profiling a send benchmark showed aiosmtpd spending most of its time parsing MAIL/RCPT
    addresses with the email package's full RFC 5322 header parser and reading DATA one line
    per ``readuntil()``. Plain ``<local@domain>`` addresses take a regex fast path (anything
    else still goes to aiosmtpd's parser), and DATA is read in runs up to the next
    ``.<CRLF>``, so the sink keeps up with the senders it measures (figures:
    docs/performance.md).
    """

    # The stream reader's limit, which caps how much one readuntil() may return. DATA needs
    # more than aiosmtpd's 1001; command lines are still checked against command_size_limit.
    line_length_limit = 1 << 20

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        match = _PLAIN_ANGLE_ADDRESS.fullmatch(arg) if arg else None
        if match is None:
            return super()._getaddr(arg)
        return match.group(1), match.group(2).strip()

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's method name
        """Read a message body, undo dot-stuffing and pass it to the DATA hook."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        content, too_big = await self._read_data()
        if too_big:
            self._set_post_data_state()
            await self.push("552 Error: Too much mail data")
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def _read_data(self) -> tuple[bytes, bool]:
        """Return the dot-unstuffed message and whether it exceeded ``data_size_limit``."""
        reader = self._reader
        limit = self.data_size_limit or 0
        # The end marker is CRLF "." CRLF, whose leading CRLF ends the last line. Searching for
        # all five bytes finds it in one pass, unless the data is empty (just "." CRLF) or the
        # first line is too short for three bytes to be free of CR/LF: read those line by line.
        head = await reader.readexactly(3)
        if head == b".\r\n":
            return b"", False
        if b"\r" in head or b"\n" in head:
            buffered = bytearray(head)
            while not buffered.endswith(b"\r\n.\r\n"):
                buffered += await reader.readuntil(b"\r\n")
            chunks = [bytes(buffered)]
            size = len(buffered)
        else:
            chunks = [head]
            size = len(head)
            while True:
                try:
                    piece = await reader.readuntil(b"\r\n.\r\n")
                except asyncio.LimitOverrunError as exc:
                    # No end marker within the reader's limit: take what is there and go on.
                    # (asyncio keeps a possibly split marker's bytes buffered.)
                    piece = await reader.readexactly(exc.consumed)
                    size += len(piece)
                    if not limit or size <= limit:
                        chunks.append(piece)
                    continue
                size += len(piece)
                chunks.append(piece)
                break
        if limit and size > limit:
            return b"", True
        data = b"".join(chunks)[:-3]  # drop the terminating "." CRLF
        # RFC 5321 4.5.2: remove the leading "." of every line that starts with one.
        return (b"\r\n" + data).replace(b"\r\n.", b"\r\n")[2:], False

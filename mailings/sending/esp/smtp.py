"""SMTP without Django's MIME building or smtplib's round trips: the same messages, faster.

Django turns each EmailMessage into MIME through Python's email package, which costs more
per message than rendering the templates (header folding, boundary search, generator). A bulk
appeal has one shape — text and HTML alternatives, a handful of headers — so it is written
here directly. Each body goes as it is, 8bit, where Django would send it so (no line over 998
bytes) and the server takes 8bit (8BITMIME, RFC 6152, announced with BODY=8BITMIME);
otherwise quoted-printable encoded.

smtplib then waits for a reply to every command: MAIL, RCPT, DATA and the message, four round
trips a message. Where the server offers PIPELINING (RFC 2920) the envelope goes in one write,
and each message goes out together with the next message's envelope, so a message costs one
round trip. What the server answered is still read for every command of every message.
"""

import binascii
import smtplib
import uuid
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache

from django.core.mail import DNS_NAME
from django.core.mail.message import sanitize_address

from mailings.sending.errors import SendError, classify_send_error
from mailings.sending.esp.base import PLAIN_ADDRESS, BatchSender, MessageResult

CRLF = "\r\n"


@dataclass
class _Transaction:
    sender: str
    recipient: str
    envelope: bytes  # MAIL FROM, RCPT TO and DATA, ready to write
    content: bytes  # the dot-stuffed message and its terminating ".", ready to write
    message_id: str


class ConnectionLostBeforeContent(ConnectionError):
    """The connection ended before the message itself was written: nothing was sent."""


class SMTPSender(BatchSender):
    """Send a group of messages over the backend's open smtplib connection."""

    max_batch = 100

    def send(self, messages) -> list[MessageResult]:
        """Send every message; return one result per message, in order.

        The first message goes on its own and raises when it is refused for now (a 4xx, a
        connection lost before it was written), so that the caller retries the group after a
        pause. Every other outcome is a result: refused for now goes back to the queue,
        refused for good is recorded with the reason, and a message whose reply was lost
        after it was written is unknown. When the connection ends, the messages not yet
        written come back as refused for now.
        """
        if self.connection.connection is None:
            # Not connected (the batch's first connect failed): connecting again raises the
            # real reason, such as a refused connection, before anything is sent.
            self.connection.open()
        smtp = self.connection.connection
        try:
            smtp.ehlo_or_helo_if_needed()
            eight_bit = smtp.has_extn("8bitmime")
            transactions = [_transaction(message, eight_bit=eight_bit) for message in messages]
            results = [_send_one(smtp, transactions[0])]
        except smtplib.SMTPServerDisconnected as lost:
            # _send_one raises this only once the message was written.
            results = [MessageResult(failure=classify_send_error(lost))]
        else:
            if len(transactions) > 1:
                send_rest = _send_pipelined if smtp.has_extn("pipelining") else _send_in_turn
                results += send_rest(smtp, transactions[1:])
        results += _not_sent(len(messages) - len(results))
        if smtp.sock is None or any(r.failure and not r.failure.permanent for r in results):
            # A 421, a lost connection or a server in doubt: the next group connects afresh.
            # No QUIT, which a confused server might take for part of a message.
            smtp.close()
            self.connection.close()
        return results


def _transaction(message, *, eight_bit: bool) -> _Transaction:
    message_id = f"<{uuid.uuid4().hex}@{DNS_NAME}>"
    sender = _sender_envelope_address(message.from_email)
    recipient = _envelope_address(message.to[0])
    mime, has_8bit_part = mime_bytes_and_8bit(message, message_id, eight_bit=eight_bit)
    body = " BODY=8BITMIME" if has_8bit_part else ""
    envelope = f"MAIL FROM:<{sender}>{body}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()
    # RFC 5321 4.5.2: a line that starts with "." gets a second one.
    content = b"\r\n" + mime
    content = content.replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"
    return _Transaction(sender, recipient, envelope, content, message_id)


def _send_one(smtp, transaction: _Transaction) -> MessageResult:
    """Send one message, waiting for each reply; raise like smtplib when it is refused.

    A connection lost before the message was written raises ConnectionLostBeforeContent
    (nothing was sent); lost after, SMTPServerDisconnected (it may have been accepted).
    """
    try:
        smtp.send(transaction.envelope)
        replies = [smtp.getreply() for _ in range(3)]
        refused = _refusal(replies, transaction)
        if refused:
            _end_refused_transaction(smtp, replies)
        else:
            smtp.send(transaction.content)
    except smtplib.SMTPServerDisconnected as lost:
        # A message cut short has no terminating "." and is never accepted.
        raise ConnectionLostBeforeContent(str(lost)) from lost
    if refused:
        raise refused
    code, text = smtp.getreply()
    if code != 250:
        raise smtplib.SMTPDataError(code, text)
    return MessageResult(message_id=transaction.message_id)


def _send_pipelined(smtp, transactions: list[_Transaction]) -> list[MessageResult]:
    """Send messages with each one's content and the next one's envelope in one write.

    Return results for the messages sent or refused, stopping where the connection ended.
    """
    results: list[MessageResult] = []
    try:
        smtp.send(transactions[0].envelope)
        for index, transaction in enumerate(transactions):
            following = transactions[index + 1].envelope if index + 1 < len(transactions) else b""
            replies = [smtp.getreply() for _ in range(3)]
            if refused := _refusal(replies, transaction):
                # Refused before its content was written.
                results.append(MessageResult(failure=classify_send_error(refused)))
                _end_refused_transaction(smtp, replies)
                if smtp.sock is None:
                    break
                smtp.send(following)
                continue
            smtp.send(transaction.content + following)
            try:
                code, text = smtp.getreply()
            except smtplib.SMTPServerDisconnected as lost:
                # Written, but the answer is lost: it may have been accepted.
                results.append(MessageResult(failure=classify_send_error(lost)))
                break
            if code == 250:
                results.append(MessageResult(message_id=transaction.message_id))
                continue
            refused = smtplib.SMTPDataError(code, text)
            results.append(MessageResult(failure=classify_send_error(refused)))
            if code == 421:
                smtp.close()
                break
    except smtplib.SMTPServerDisconnected:
        pass  # Lost before the next message was written: the rest were not sent.
    return results


def _send_in_turn(smtp, transactions: list[_Transaction]) -> list[MessageResult]:
    """Send messages one command at a time, for a server without PIPELINING."""
    results: list[MessageResult] = []
    for transaction in transactions:
        try:
            results.append(_send_one(smtp, transaction))
        except ConnectionLostBeforeContent:
            break
        except smtplib.SMTPServerDisconnected as lost:
            results.append(MessageResult(failure=classify_send_error(lost)))
            break
        except smtplib.SMTPException as refused:
            results.append(MessageResult(failure=classify_send_error(refused)))
            if smtp.sock is None:
                break
    return results


def _refusal(replies: list[tuple[int, bytes]], transaction: _Transaction):
    """Return what smtplib raises for a refused MAIL, RCPT or DATA, or None when DATA got 354."""
    (mail_code, mail_text), (rcpt_code, rcpt_text), (data_code, data_text) = replies
    if mail_code != 250:
        return smtplib.SMTPSenderRefused(mail_code, mail_text, transaction.sender)
    if rcpt_code not in (250, 251):
        return smtplib.SMTPRecipientsRefused({transaction.recipient: (rcpt_code, rcpt_text)})
    if data_code != 354:
        return smtplib.SMTPDataError(data_code, data_text)
    return None


def _end_refused_transaction(smtp, replies: list[tuple[int, bytes]]) -> None:
    """Leave the server ready for the next MAIL, or close the connection when it cannot be.

    A server that hung up (421), or that waits for content after refusing the envelope, is
    closed; an accepted MAIL is reset, as smtplib does.
    """
    codes = [code for code, _text in replies]
    if 421 in codes or codes[2] == 354:
        smtp.close()
        return
    if codes[0] == 250:
        smtp.send(b"RSET\r\n")
        if smtp.getreply()[0] != 250:
            smtp.close()


def _not_sent(count: int) -> list[MessageResult]:
    failure = SendError("Not sent: the SMTP connection ended before this message.", permanent=False)
    return [MessageResult(failure=failure)] * count


def mime_bytes(message, message_id: str, *, eight_bit: bool = False) -> bytes:
    """Return an AnymailMessage with text and HTML alternatives as RFC 5322 bytes.

    With `eight_bit`, a body with no line over 998 bytes goes as it is (8bit), as Django's
    SafeMIMEText sends it; any other body, or any body without it, quoted-printable.
    """
    return mime_bytes_and_8bit(message, message_id, eight_bit=eight_bit)[0]


def mime_bytes_and_8bit(message, message_id: str, *, eight_bit: bool) -> tuple[bytes, bool]:
    """Return the message's bytes (as mime_bytes) and whether a body of it went 8bit."""
    html = next(content for content, mimetype in message.alternatives if mimetype == "text/html")
    boundary = uuid.uuid4().hex
    headers = [
        f"From: {_address_header(message.from_email)}",
        f"To: {_address_header(message.to[0])}",
        f"Subject: {_text_header(message.subject)}",
        f"Date: {formatdate(localtime=False)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
    ]
    if message.reply_to:
        headers.append(f"Reply-To: {_address_header(message.reply_to[0])}")
    for name, value in message.extra_headers.items():
        headers.append(f"{name}: {_text_header(value)}")
    headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    text_encoding, text_body = _body(message.body, eight_bit=eight_bit)
    html_encoding, html_body = _body(html, eight_bit=eight_bit)
    parts = [
        CRLF.join(headers).encode("ascii"),
        b"",
        f"--{boundary}".encode(),
        b'Content-Type: text/plain; charset="utf-8"',
        b"Content-Transfer-Encoding: " + text_encoding,
        b"",
        text_body,
        f"--{boundary}".encode(),
        b'Content-Type: text/html; charset="utf-8"',
        b"Content-Transfer-Encoding: " + html_encoding,
        b"",
        html_body,
        f"--{boundary}--".encode(),
        b"",
    ]
    return b"\r\n".join(parts), EIGHT_BIT in (text_encoding, html_encoding)


EIGHT_BIT = b"8bit"
QUOTED_PRINTABLE = b"quoted-printable"
# RFC 5322 2.1.1: a line is at most 998 bytes, its CRLF aside.
LINE_LENGTH_LIMIT = 998


def _body(text: str, *, eight_bit: bool) -> tuple[bytes, bytes]:
    """Return a body's transfer encoding and its bytes, with CRLF line ends.

    8bit where it may be: the text as UTF-8, every line within the limit and no NUL (RFC 2045
    2.8). Django's SafeMIMEText chooses the same way, and quoted-printable, which rewrites
    every "=" of an HTML attribute and most of a Cyrillic text, also costs the most to write.
    """
    lf_text = text.replace("\r\n", "\n").replace("\r", "\n")
    if eight_bit:
        utf8 = lf_text.encode("utf-8")
        lines = utf8.split(b"\n")
        if b"\0" not in utf8 and max(map(len, lines)) <= LINE_LENGTH_LIMIT:
            return EIGHT_BIT, b"\r\n".join(lines)
    return QUOTED_PRINTABLE, _quoted_printable(lf_text).encode("ascii")


def _quoted_printable(text: str) -> str:
    """Return text quoted-printable encoded, with CRLF line ends, line by line.

    Quoted-printable encodes each line on its own (a soft break restarts at each line end), so
    the lines can be encoded apart and joined: what binascii gives for the whole text
    (tests/mailings/sending/test_esp_fast_paths.py compares them). Most lines of a mailing's
    bodies are the same in every message, and encoding is slow: those come from a cache.
    """
    lf_text = text.replace("\r\n", "\n").replace("\r", "\n")
    return CRLF.join([_quoted_printable_line(line) for line in lf_text.split("\n")])


# Enough for the constant lines of a few mailings' versions and variants; the personal lines
# of each message pass through and are evicted first, being used once.
@lru_cache(maxsize=4096)
def _quoted_printable_line(line: str) -> str:
    # A long line comes back with soft breaks, "=\n": made CRLF too.
    encoded = binascii.b2a_qp(line.encode("utf-8"), istext=True).decode("ascii")
    return encoded.replace("\n", CRLF)


def _text_header(value: str) -> str:
    """Return a header value, RFC 2047-encoded when it is not plain ASCII."""
    value = " ".join(str(value).split())  # No line breaks can reach a header.
    if value.isascii():
        return value
    return Header(value, "utf-8").encode()


def _address_header(address: str) -> str:
    # A recipient's address is new every message: parsing it is most of a header's cost.
    if PLAIN_ADDRESS.fullmatch(address):
        return address
    return _formatted_address_header(address)


@lru_cache(maxsize=64)
def _formatted_address_header(address: str) -> str:
    name, addr = parseaddr(address)
    return formataddr((name, addr), charset="utf-8") if name else addr


@lru_cache(maxsize=64)
def _sender_envelope_address(address: str) -> str:
    return _envelope_address(address)


def _envelope_address(address: str) -> str:
    """Return an address for MAIL FROM / RCPT TO; Django's sanitising only where it can matter."""
    if address.isascii() and "<" not in address:
        return address
    # Display names and international domains, as Django's SMTP backend and smtplib handle them.
    return parseaddr(sanitize_address(address, "utf-8"))[1]

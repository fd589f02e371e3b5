"""ESP webhook posts as each ESP sends them, after anymail's own tests (tests/test_*_webhooks.py).

Each builder takes the kind of event (delivered, hard_bounce, soft_bounce, complaint, click)
and the message it is about, and returns the post the ESP would make to anymail's URL: the
metadata Rally sends (delivery_id, mailing_id) comes back the way that ESP echoes it.
"""

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings

KINDS = ("delivered", "hard_bounce", "soft_bounce", "complaint", "click")
MAILGUN_SIGNING_KEY = "rally-test-mailgun-signing-key"
STAMP = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Message:
    """The sent message an event speaks of."""

    email: str
    message_id: str
    metadata: dict
    # Varies the ESP's event id and time, so two events about one message are two events.
    serial: int = 0


@dataclass
class WebhookPost:
    path: str
    body: str
    content_type: str = "application/json"
    headers: dict = field(default_factory=dict)


def basic_auth(secret: str | None = None) -> dict:
    """Return the Authorization header an ESP configured with the webhook secret sends."""
    secret = settings.ANYMAIL_WEBHOOK_SECRET if secret is None else secret
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


def metadata_for(delivery) -> dict:
    """Return the metadata the send queue attaches (mailings/content/rendering.py build_message)."""
    return {"delivery_id": str(delivery.pk), "mailing_id": str(delivery.mailing_id)}


def _epoch(message: Message) -> float:
    return STAMP.timestamp() + message.serial


def _iso(message: Message) -> str:
    return datetime.fromtimestamp(_epoch(message), tz=UTC).isoformat().replace("+00:00", "Z")


def postmark(kind: str, message: Message) -> WebhookPost:
    common = {
        "MessageID": message.message_id,
        "Metadata": message.metadata,
        "ServerID": 23,
        "Tag": "appeal",
    }
    bounce = {
        "RecordType": "Bounce",
        "ID": 901542550 + message.serial,
        "Email": message.email,
        "From": "campaigns@rally.example",
        "BouncedAt": _iso(message),
        "Inactive": kind == "hard_bounce",
        "CanActivate": True,
        "Subject": "Sign now",
    }
    events = {
        "delivered": {
            "RecordType": "Delivery",
            "Recipient": message.email,
            "DeliveredAt": _iso(message),
            "Details": "smtp;250 2.0.0 OK",
        },
        "hard_bounce": {
            **bounce,
            "Type": "HardBounce",
            "TypeCode": 1,
            "Name": "Hard bounce",
            "Description": "The server was unable to deliver your message "
            "(ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        },
        "soft_bounce": {
            **bounce,
            "Type": "SoftBounce",
            "TypeCode": 4096,
            "Name": "Soft bounce/Undeliverable",
            "Description": "Unable to temporarily deliver this email.",
            "Details": "smtp;452 4.2.2 The email account that you tried to reach is over quota.",
        },
        "complaint": {
            **bounce,
            "RecordType": "SpamComplaint",
            "Type": "SpamComplaint",
            "TypeCode": 512,
            "Name": "Spam complaint",
            "Description": "The subscriber explicitly marked this message as spam.",
            "Details": "Test spam complaint details",
        },
        "click": {
            "RecordType": "Click",
            "ClickLocation": "HTML",
            "Platform": "Desktop",
            "UserAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_7_5) etc.",
            "OriginalLink": "https://rally.example/petitions/sign/",
            "ReceivedAt": _iso(message),
            "Recipient": message.email,
        },
    }
    return WebhookPost("/anymail/postmark/tracking/", json.dumps({**common, **events[kind]}))


def mailgun_sign(payload: dict, key: str = MAILGUN_SIGNING_KEY) -> dict:
    """Add the signature block Mailgun computes (HMAC-SHA256 of timestamp + token)."""
    timestamp = str(int(payload["event-data"]["timestamp"]))
    token = hashlib.sha256(json.dumps(payload["event-data"], sort_keys=True).encode()).hexdigest()
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    payload["signature"] = {"timestamp": timestamp, "token": token, "signature": signature}
    return payload


def mailgun(kind: str, message: Message) -> WebhookPost:
    common = {
        "id": f"hTWCTD81RtiDN-{message.serial}",
        "timestamp": _epoch(message),
        "recipient": message.email,
        "user-variables": message.metadata,
        "tags": ["appeal"],
        "message": {
            "headers": {
                "to": message.email,
                "message-id": message.message_id.strip("<>"),
                "from": "campaigns@rally.example",
                "subject": "Sign now",
            },
        },
    }
    failed = {"event": "failed", "severity": "permanent", "log-level": "error"}
    events = {
        "delivered": {
            "event": "delivered",
            "log-level": "info",
            "delivery-status": {"code": 250, "message": "OK", "description": ""},
        },
        "hard_bounce": {
            **failed,
            "reason": "bounce",
            "delivery-status": {
                "code": 550,
                "message": "5.1.1 The email account that you tried to reach does not exist.",
                "description": "",
            },
        },
        # Mailgun retries temporary failures itself; when it gives up, the failure is permanent
        # with reason "old" (or "generic"): the mailbox was never reached, nor found dead.
        "soft_bounce": {
            **failed,
            "reason": "old",
            "delivery-status": {
                "code": 452,
                "message": "4.2.2 The email account that you tried to reach is over quota.",
                "description": "Too old",
            },
        },
        "complaint": {"event": "complained", "log-level": "warn"},
        "click": {
            "event": "clicked",
            "log-level": "info",
            "url": "https://rally.example/petitions/sign/",
            "client-info": {"user-agent": "Mozilla/5.0"},
        },
    }
    payload = mailgun_sign({"event-data": {**common, **events[kind]}})
    return WebhookPost("/anymail/mailgun/tracking/", json.dumps(payload))


def sns_post(ses_event: dict, sns_message_id: str) -> WebhookPost:
    """Wrap an SES event in the SNS notification that carries it (posted as text/plain)."""
    sns_message = {
        "Type": "Notification",
        "MessageId": sns_message_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:rally-ses-events",
        "Message": json.dumps(ses_event) + "\n",
        "Timestamp": "2026-11-30T12:00:00.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
    }
    return WebhookPost(
        "/anymail/amazon_ses/tracking/",
        json.dumps(sns_message),
        content_type="text/plain; charset=UTF-8",
        headers={
            "HTTP_X_AMZ_SNS_MESSAGE_ID": sns_message["MessageId"],
            "HTTP_X_AMZ_SNS_MESSAGE_TYPE": sns_message["Type"],
        },
    )


def amazon_ses(kind: str, message: Message) -> WebhookPost:
    mail = {
        "timestamp": _iso(message),
        "source": "campaigns@rally.example",
        "messageId": message.message_id,
        "destination": [message.email],
        "headersTruncated": False,
        # anymail's SES backend sends metadata as this header; SES publishes the headers.
        "headers": [
            {"name": "From", "value": "Rally <campaigns@rally.example>"},
            {"name": "To", "value": message.email},
            {"name": "X-Metadata", "value": json.dumps(message.metadata)},
        ],
    }

    def bounce(bounce_type: str, sub_type: str, status: str, code: str) -> dict:
        return {
            "eventType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": sub_type,
                "bouncedRecipients": [
                    {
                        "emailAddress": message.email,
                        "action": "failed",
                        "status": status,
                        "diagnosticCode": code,
                    }
                ],
                "timestamp": _iso(message),
                "feedbackId": f"0100017f-bounce-{message.serial}",
                "reportingMTA": "dns; email.example.com",
            },
        }

    events = {
        "delivered": {
            "eventType": "Delivery",
            "delivery": {
                "timestamp": _iso(message),
                "recipients": [message.email],
                "processingTimeMillis": 546,
                "smtpResponse": "250 ok:  Message 64111812 accepted",
            },
        },
        "hard_bounce": bounce("Permanent", "General", "5.1.1", "smtp; 550 5.1.1 User unknown"),
        "soft_bounce": bounce("Transient", "MailboxFull", "4.2.2", "smtp; 452 4.2.2 Over quota"),
        "complaint": {
            "eventType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": message.email}],
                "timestamp": _iso(message),
                "feedbackId": f"0100017f-complaint-{message.serial}",
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complaintFeedbackType": "abuse",
            },
        },
        "click": {
            "eventType": "Click",
            "click": {
                "ipAddress": "192.0.2.1",
                "link": "https://rally.example/petitions/sign/",
                "timestamp": _iso(message),
                "userAgent": "Mozilla/5.0",
            },
        },
    }
    return sns_post(
        {**events[kind], "mail": mail}, f"19ba9823-d7f2-53c1-860e-{message.serial:012d}"
    )


def sendgrid(kind: str, message: Message) -> WebhookPost:
    # SendGrid posts a list of events; custom_args (anymail's metadata) are top-level keys.
    common = {
        "email": message.email,
        "timestamp": int(_epoch(message)),
        "smtp-id": message.message_id,
        "sg_event_id": f"sg-event-{kind}-{message.serial}",
        "sg_message_id": f"{message.message_id.strip('<>')}.filter0001",
        "category": ["appeal"],
        **message.metadata,
    }
    events = {
        "delivered": {"event": "delivered", "response": "250 OK", "ip": "192.0.2.2"},
        "hard_bounce": {
            "event": "bounce",
            "type": "bounce",
            "status": "5.1.1",
            "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
        },
        "soft_bounce": {
            "event": "bounce",
            "type": "blocked",
            "status": "4.0.0",
            "reason": "451 4.7.1 Temporarily rejected, try again later",
        },
        "complaint": {"event": "spamreport"},
        "click": {
            "event": "click",
            "url": "https://rally.example/petitions/sign/",
            "url_offset": {"index": 0, "type": "html"},
            "useragent": "Mozilla/5.0",
            "ip": "192.0.2.3",
        },
    }
    return WebhookPost("/anymail/sendgrid/tracking/", json.dumps([{**common, **events[kind]}]))


def brevo(kind: str, message: Message) -> WebhookPost:
    common = {
        "email": message.email,
        "id": 1234567,
        "date": "2026-11-30 13:00:00",
        "ts": int(_epoch(message)),
        "message-id": message.message_id,
        "ts_event": int(_epoch(message)),
        "subject": "Sign now",
        "X-Mailin-custom": json.dumps(message.metadata),
        "sending_ip": "192.0.2.4",
        "ts_epoch": int(_epoch(message) * 1000),
        "tags": ["appeal"],
    }
    events = {
        "delivered": {"event": "delivered"},
        "hard_bounce": {"event": "hard_bounce", "reason": "550 5.1.1 Unknown user"},
        "soft_bounce": {"event": "soft_bounce", "reason": "452 4.2.2 Mailbox full"},
        "complaint": {"event": "spam"},
        "click": {"event": "click", "link": "https://rally.example/petitions/sign/"},
    }
    return WebhookPost("/anymail/brevo/tracking/", json.dumps({**common, **events[kind]}))


def mailjet(kind: str, message: Message) -> WebhookPost:
    common = {
        "time": int(_epoch(message)),
        "MessageID": int(message.message_id),
        "Message_GUID": f"1ab23cd4-e567-8901-2345-6789f0gh1i2j-{message.serial}",
        "email": message.email,
        "mj_campaign_id": 7173,
        "mj_contact_id": 320,
        "customcampaign": "",
        "CustomID": "",
        "Payload": json.dumps(message.metadata),
    }
    bounce = {
        "event": "bounce",
        "blocked": False,
        "error_related_to": "recipient",
        "comment": "",
    }
    events = {
        "delivered": {
            "event": "sent",
            "mj_message_id": message.message_id,
            "smtp_reply": "sent (250 2.0.0 OK 1433333948 fa5si855896wjc.199 - gsmtp)",
        },
        "hard_bounce": {**bounce, "hard_bounce": True, "error": "user unknown"},
        "soft_bounce": {**bounce, "hard_bounce": False, "error": "quota exceeded"},
        "complaint": {"event": "spam", "source": "JMRPP"},
        "click": {
            "event": "click",
            "url": "https://rally.example/petitions/sign/",
            "ip": "192.0.2.5",
            "geo": "FR",
            "agent": "Mozilla/5.0",
        },
    }
    # Mailjet groups events into an array when "group events" is on, as Rally expects.
    return WebhookPost("/anymail/mailjet/tracking/", json.dumps([{**common, **events[kind]}]))


ESPS = {
    "postmark": postmark,
    "mailgun": mailgun,
    "amazon_ses": amazon_ses,
    "sendgrid": sendgrid,
    "brevo": brevo,
    "mailjet": mailjet,
}


def message_id_for(esp: str, serial: int) -> str:
    """Return a message id in the form the ESP gives (Mailjet's are numbers, Mailgun's <…>)."""
    if esp == "mailjet":
        return str(19421777835146490 + serial)
    if esp == "mailgun":
        return f"<20261130120000.{serial}.DF5966851B4BAA99@rally.example>"
    if esp == "brevo":
        return f"<202611301200.{serial}@smtp-relay.mailin.fr>"
    return f"2706ee8a-737c-4285-b032-{serial:012d}"

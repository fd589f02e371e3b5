"""A development email backend: every message becomes an OutboxMessage row the admin lists.

It lets a campaigner running Rally on a laptop (`make run`) open each email the send queue
produced, one per recipient, without an ESP account or an SMTP server.
"""

from django.core.mail.backends.base import BaseEmailBackend

from mailings.models import OutboxMessage


class EmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages) -> int:
        rows = []
        for message in email_messages:
            html = next(
                (content for content, mimetype in getattr(message, "alternatives", [])
                 if mimetype == "text/html"),
                "",
            )  # fmt: skip
            rows.append(
                OutboxMessage(
                    to=", ".join(message.to),
                    from_email=message.from_email,
                    subject=message.subject,
                    headers={str(k): str(v) for k, v in message.extra_headers.items()},
                    text_body=message.body,
                    html_body=html,
                    # As an ESP keeps it: the reconciler asks this table by it.
                    metadata={
                        str(k): str(v)
                        for k, v in (getattr(message, "metadata", None) or {}).items()
                    },
                )
            )
        OutboxMessage.objects.bulk_create(rows)
        return len(rows)

"""One of everything the admin shows, each text carrying a marker that names its model.

The role walk (test_admin_access_by_role.py) looks for these markers in every page a role
opens: a marker of a model the role may not see must never reach it. The XSS tests fill the same
fields with payloads instead (`world_build(text=…)`).
"""

import json
from dataclasses import dataclass, field

from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from api.models import ApiAuditEntry
from api.services.tokens import api_token_create
from campaigns.models import Petition, PetitionTranslation, Signature
from config.lib.richtext import sanitize_html
from mailings.models import (
    Delivery,
    Mailing,
    MailingAuditEntry,
    MailingVersion,
    OutboxMessage,
    TrackingEvent,
)
from operations.models import WorkersAndQueues
from supporters.models import (
    ConsentRecord,
    Segment,
    Supporter,
    SupporterAuditEntry,
    SupporterImport,
    SupporterImportRejection,
)
from tests.factories import (
    CampaignFactory,
    MailingFactory,
    PetitionFactory,
    SignatureFactory,
    SupporterFactory,
    TagFactory,
)
from webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription


def marker(label: str) -> str:
    """Return the marker text of one model's rows: unmistakable, and plain text."""
    return f"zq{label}marker"


@dataclass
class World:
    """The rows made, by model, and the marker each model's text holds."""

    objects: dict = field(default_factory=dict)  # model class -> [instances]
    markers: dict = field(default_factory=dict)  # model class -> marker

    @property
    def supporter(self):
        return self.objects[Supporter][0]

    @property
    def petition(self):
        return self.objects[Petition][0]

    @property
    def signature(self):
        return self.objects[Signature][0]

    @property
    def draft_mailing(self):
        return self.objects[Mailing][0]

    @property
    def sent_mailing(self):
        return self.objects[Mailing][1]

    def add(self, instance, label: str | None = None):
        model = type(instance)
        self.objects.setdefault(model, []).append(instance)
        if label:
            self.markers[model] = marker(label)
        return instance


def world_build(text=marker) -> World:
    """Make one row of every model the admin registers (two mailings: a draft and a sent one).

    `text(label)` gives the text put into each model's fields; by default a marker.
    """
    world = World()
    tag = world.add(TagFactory(name=text("tag")[:100]), "tag")
    supporter = world.add(
        SupporterFactory(
            email="real.supporter@example.org",
            first_name=text("supporter")[:100],
            last_name=text("supporter")[:100],
            postcode="N1 9GU",
        ),
        "supporter",
    )
    supporter.tags.add(tag)
    campaign = world.add(
        CampaignFactory(name=text("campaign")[:200], description=text("campaign")), "campaign"
    )
    petition = world.add(
        PetitionFactory(
            campaign=campaign,
            title=text("petition")[:200],
            target=text("petition")[:200],
            # Rich text reaches the database through the sanitiser, as the admin form saves it.
            body=sanitize_html(f"<p>{text('petition')}</p>"),
            consent_wording=text("petition"),
        ),
        "petition",
    )
    world.add(
        PetitionTranslation.objects.create(
            petition=petition, language="ru", title=text("translation")[:200],
            body=sanitize_html(f"<p>{text('translation')}</p>"), target=text("translation")[:200],
        ),
        "translation",
    )  # fmt: skip
    world.add(
        ConsentRecord.objects.create(
            supporter=supporter, wording=text("consent"), source_url="https://rally.example/p/"
        ),
        "consent",
    )
    draft = world.add(
        MailingFactory(
            campaign=campaign,
            petition=petition,
            name=text("mailing")[:200],
            subject=text("mailing")[:250],
            status_reason=text("mailing")[:500],
        ),
        "mailing",
    )
    sent = world.add(
        MailingFactory(
            campaign=campaign,
            petition=petition,
            name=text("mailing")[:200],
            status="sending",
            started_at=timezone.now(),
        )
    )
    world.add(
        MailingVersion.objects.create(
            mailing=draft, language="ru", subject="Привет {{ first_name }}",
            html_body="<p>Подпишите: {{ petition_url }}</p>", text_body="{{ petition_url }}",
        )
    )  # fmt: skip
    world.add(
        SignatureFactory(petition=petition, supporter=supporter, source=text("signature")[:100]),
        "signature",
    )
    delivery = world.add(
        Delivery.objects.create(
            mailing=sent, supporter=supporter, status="sent", sent_at=timezone.now(),
            esp_message_id="esp-1", error=text("delivery"),
        ),
        "delivery",
    )  # fmt: skip
    world.add(
        TrackingEvent.objects.create(
            delivery=delivery, esp="postmark", event_id="event-1", event_type="bounced",
            message_id="esp-1", recipient="real.supporter@example.org",
            description=text("trackingevent"), payload={"note": text("trackingevent")},
            occurred_at=timezone.now(),
        ),
        "trackingevent",
    )  # fmt: skip
    world.add(
        OutboxMessage.objects.create(
            to="real.supporter@example.org", from_email="campaigns@rally.example",
            subject=text("outboxmessage")[:1000], headers={},
            text_body=text("outboxmessage"), html_body=f"<p>{text('outboxmessage')}</p>",
        ),
        "outboxmessage",
    )  # fmt: skip
    operator = world.add(
        User.objects.create_user(
            "operator", email="operator@example.org", first_name=text("user")[:150],
            last_name=text("user")[:150], is_staff=True,
        ),
        "user",
    )  # fmt: skip
    world.add(Group.objects.create(name=text("group")[:150]), "group")
    world.add(
        MailingAuditEntry.objects.create(
            mailing=draft, mailing_name=draft.name, actor=operator, actor_name="operator",
            action="created", detail=text("mailingauditentry")[:500],
        ),
        "mailingauditentry",
    )  # fmt: skip
    world.add(
        SupporterAuditEntry.objects.create(
            actor=operator, actor_name="operator", action="export_supporters", row_count=1,
            detail=text("supporterauditentry")[:500],
        ),
        "supporterauditentry",
    )  # fmt: skip
    supporter_import = world.add(
        SupporterImport.objects.create(
            original_name=text("supporterimport")[:255], tag_names=[tag.name],
            consent_source="fair", consent_wording="yes", status="done", rows=1, created=1,
            merged=0, rejected=0, error=text("supporterimport"),
        ),
        "supporterimport",
    )  # fmt: skip
    SupporterImportRejection.objects.create(
        supporter_import=supporter_import, line=2, reason="Not an email address",
        raw=json.dumps([text("supporterimport"), "not-an-address"]),
    )  # fmt: skip
    segment = world.add(
        Segment.objects.create(name=text("segment")[:200], description=text("segment")),
        "segment",
    )
    segment.conditions.create(kind="has_tag", tag=tag)
    segment.conditions.create(kind="signed_petition", petition=petition, days=30, negate=True)
    token = world.add(
        api_token_create(name=text("apitoken")[:100], scope="write", created_by=operator).token,
        "apitoken",
    )
    world.add(
        ApiAuditEntry.objects.create(
            token=token, token_name=token.name, method="POST", path="/api/osdi/v1/people",
            status=201, written=text("apiauditentry")[:1000],
        ),
        "apiauditentry",
    )  # fmt: skip
    subscription = world.add(
        WebhookSubscription.objects.create(
            url="https://crm.example.org/hooks/rally", events=["signature.created"],
            secret=text("webhooksubscription")[:200], created_by=operator,
        ),
        "webhooksubscription",
    )  # fmt: skip
    event = world.add(
        WebhookEvent.objects.create(
            type="signature.created", created_at=timezone.now(), supporter_id=supporter.pk,
            payload={"type": "signature.created", "data": {"note": text("webhookevent")}},
        )
    )  # fmt: skip
    world.add(
        WebhookDelivery.objects.create(
            event=event, subscription=subscription, status="failed", attempts=1,
            response_status=500, response_body=text("webhookdelivery"),
        ),
        "webhookdelivery",
    )  # fmt: skip
    # Tableless (the operator's page of workers and queues): its admin is that page alone, with
    # no row in its URL, so an unsaved instance stands for it.
    world.add(WorkersAndQueues())
    # A history entry, so that history pages have a row to show.
    LogEntry.objects.log_actions(
        user_id=operator.pk, queryset=[draft], action_flag=ADDITION, change_message="Added."
    )
    ContentType.objects.clear_cache()
    return world

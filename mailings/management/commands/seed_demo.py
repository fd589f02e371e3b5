import random

from django.contrib.auth.models import Group, Permission, User
from django.core.management.base import BaseCommand
from django.db import transaction

from campaigns.models import Campaign, Petition, PetitionTranslation, Signature
from config.lib.richtext import sanitize_html
from config.lib.roles import campaigner_group_ensure
from mailings.content.compose import sanitize_mailing_html
from mailings.content.senders import allowed_senders
from mailings.demo import content
from mailings.models import Mailing
from supporters.models import Segment, SegmentCondition, Supporter, Tag

DEMO_USERNAME = "campaigner"
DEMO_PASSWORD = "rally-demo"  # noqa: S105 -- a local demo login, printed by `make run`
SUPPORTER_COUNT = 1000
# Every Nth demo supporter has already signed the Navalny petition; every Mth has unsubscribed.
SIGNED_EVERY = 5
UNSUBSCRIBED_EVERY = 37


class Command(BaseCommand):
    help = "Load the demo: two petitions, an appeal mailing, 1,000 supporters and a login."

    @transaction.atomic
    def handle(self, *args, **options):
        navalny_petition, refuseniks_petition = self.seed_petitions()
        supporters = self.seed_supporters()
        self.seed_signatures(navalny_petition, supporters)
        mailing = self.seed_mailing(navalny_petition)
        self.seed_segment(refuseniks_petition)
        self.seed_campaigner()
        self.stdout.write(
            f"Demo ready: petitions “{navalny_petition.slug}” and “{refuseniks_petition.slug}”, "
            f"{len(supporters)} demo supporters, mailing #{mailing.pk} “{mailing.name}”, "
            f"login {DEMO_USERNAME} / {DEMO_PASSWORD}."
        )

    def seed_petitions(self) -> tuple[Petition, Petition]:
        petitions = []
        for campaign_data, petition_data in (
            (content.NAVALNY_CAMPAIGN, content.NAVALNY_PETITION),
            (content.REFUSENIKS_CAMPAIGN, content.REFUSENIKS_PETITION),
        ):
            campaign, _ = Campaign.objects.get_or_create(
                slug=campaign_data["slug"], defaults=campaign_data
            )
            petition, _ = Petition.objects.get_or_create(
                slug=petition_data["slug"],
                defaults={
                    **petition_data,
                    "body": sanitize_html(petition_data["body"]),
                    "campaign": campaign,
                },
            )
            petitions.append(petition)
        PetitionTranslation.objects.get_or_create(
            petition=petitions[0],
            language=content.NAVALNY_PETITION_RU["language"],
            defaults=content.NAVALNY_PETITION_RU,
        )
        return petitions[0], petitions[1]

    def seed_supporters(self) -> list[Supporter]:
        # A fixed seed: the same thousand people every time, so a second run adds nobody.
        rng = random.Random(2021)  # noqa: S311
        volunteers, _ = Tag.objects.get_or_create(name="volunteers")
        rows = []
        for number in range(1, SUPPORTER_COUNT + 1):
            russian = number % 4 == 0
            first = rng.choice(content.FIRST_NAMES_RU if russian else content.FIRST_NAMES_EN)
            last = rng.choice(content.LAST_NAMES_RU if russian else content.LAST_NAMES_EN)
            rows.append(
                Supporter(
                    email=f"demo.supporter{number:04d}@example.org",
                    first_name=first,
                    last_name=last,
                    country="RU" if russian and number % 8 == 0 else rng.choice(content.COUNTRIES),
                    language="ru" if russian else "en",
                    status=(
                        Supporter.Status.UNSUBSCRIBED
                        if number % UNSUBSCRIBED_EVERY == 0
                        else Supporter.Status.SUBSCRIBED
                    ),
                    source="demo",
                )
            )
        Supporter.objects.bulk_create(rows, ignore_conflicts=True)
        supporters = list(
            Supporter.objects.filter(email__endswith="@example.org", source="demo").order_by(
                "email"
            )
        )
        volunteers.supporters.add(*supporters[::10])
        return supporters

    def seed_signatures(self, petition: Petition, supporters: list[Supporter]) -> None:
        Signature.objects.bulk_create(
            [
                Signature(petition=petition, supporter=supporter, confirmed_at=supporter.created_at)
                for supporter in supporters[::SIGNED_EVERY]
            ],
            ignore_conflicts=True,
        )

    def seed_mailing(self, petition: Petition) -> Mailing:
        sender = allowed_senders()[0]
        mailing, _ = Mailing.objects.get_or_create(
            name=content.NAVALNY_MAILING["name"],
            defaults={
                **content.NAVALNY_MAILING,
                "from_name": sender.name,
                "from_email": sender.email,
                "reply_to": sender.reply_to,
                "html_body": sanitize_mailing_html(content.NAVALNY_MAILING["html_body"]),
                "campaign": petition.campaign,
                "petition": petition,
                # Everyone subscribed who has not signed yet.
                "audience_not_signed_petition": petition,
            },
        )
        return mailing

    def seed_segment(self, petition: Petition) -> Segment:
        """A saved audience to start from: volunteers who have not signed the second petition."""
        segment, created = Segment.objects.get_or_create(
            name=content.DEMO_SEGMENT["name"],
            defaults={"description": content.DEMO_SEGMENT["description"]},
        )
        if created:
            SegmentCondition.objects.bulk_create(
                [
                    SegmentCondition(
                        segment=segment,
                        kind=SegmentCondition.Kind.HAS_TAG,
                        tag=Tag.objects.get(name="volunteers"),
                    ),
                    SegmentCondition(
                        segment=segment,
                        kind=SegmentCondition.Kind.SIGNED_PETITION,
                        petition=petition,
                        negate=True,
                    ),
                ]
            )
        return segment

    def seed_campaigner(self) -> None:
        # A migration makes the group (mailings 0006); a flushed test database has lost it.
        group = campaigner_group_ensure(group_model=Group, permission_model=Permission)
        user, created = User.objects.get_or_create(
            username=DEMO_USERNAME, defaults={"is_staff": True, "first_name": "Demo"}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(group)
        # The demo login reads the development outbox, where the README sends it to see what
        # went out to the demo's made-up supporters. The role itself never reads the outbox:
        # on a real list every message there holds a supporter's personal links.
        user.user_permissions.add(
            Permission.objects.get(
                content_type__app_label="mailings", codename="view_outboxmessage"
            )
        )

import factory
from django.utils import timezone

from campaigns.models import Campaign, Petition, Signature
from mailings.models import Mailing
from supporters.models import Supporter, Tag


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag-{n}")


class SupporterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Supporter

    email = factory.Sequence(lambda n: f"supporter{n}@example.org")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    country = "GB"
    language = "en"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    slug = factory.Sequence(lambda n: f"campaign-{n}")


class PetitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Petition

    campaign = factory.SubFactory(CampaignFactory)
    slug = factory.Sequence(lambda n: f"petition-{n}")
    title = factory.Sequence(lambda n: f"Free prisoner {n}")
    body = "<p>Release them now.</p>"
    target = "The authorities"


class SignatureFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Signature

    petition = factory.SubFactory(PetitionFactory)
    supporter = factory.SubFactory(SupporterFactory)
    confirmed_at = factory.LazyFunction(timezone.now)


class MailingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mailing

    campaign = factory.SubFactory(CampaignFactory)
    petition = factory.SubFactory(PetitionFactory, campaign=factory.SelfAttribute("..campaign"))
    name = factory.Sequence(lambda n: f"Appeal {n}")
    subject = "{{ first_name|default:'Friend' }}, sign now"
    # The default of RALLY_SENDERS, so a factory mailing passes the admin form's sender check.
    from_name = "Rally campaigns"
    from_email = "campaigns@rally.example"
    html_body = (
        '<p>Dear {{ first_name|default:"friend" }},</p>'
        '<p><a href="{{ petition_url }}">Sign</a></p>'
        '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>'
    )
    text_body = (
        'Dear {{ first_name|default:"friend" }},\n\nSign: {{ petition_url }}\n\n'
        "Unsubscribe: {{ unsubscribe_url }}\n"
    )


# The admin's mailing form carries the management forms of its inlines (language versions and
# A/B variants): a POST without them is refused. These say "no version or variant rows".
MAILING_FORM_NO_VERSIONS = {
    "versions-TOTAL_FORMS": "0",
    "versions-INITIAL_FORMS": "0",
    "versions-MIN_NUM_FORMS": "0",
    "versions-MAX_NUM_FORMS": "2",
    "variants-TOTAL_FORMS": "0",
    "variants-INITIAL_FORMS": "0",
    "variants-MIN_NUM_FORMS": "0",
    "variants-MAX_NUM_FORMS": "1000",
}


class DeliveryFactory(factory.django.DjangoModelFactory):
    """A ledger row already sent, as webhooks find it: with its ESP message id."""

    class Meta:
        model = "mailings.Delivery"

    mailing = factory.SubFactory(MailingFactory)
    supporter = factory.SubFactory(SupporterFactory)
    status = "sent"
    sent_at = factory.LazyFunction(timezone.now)
    esp_message_id = factory.Sequence(lambda n: f"esp-message-{n}")

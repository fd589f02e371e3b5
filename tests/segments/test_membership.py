"""A segment's members are exactly those a pure-Python reading of the same data picks.

A seeded random population (tags, signatures at random dates and from random mailings,
deliveries sent, opened and clicked at random dates, engagement rows, languages, countries,
sources, joining dates near midnight in the campaigner's zone, some who may not be mailed) is
written to the database; then every condition kind, plain and negated, and random all/any
combinations are asked of segment_audience and checked against `expected_members`, which
reads the same facts from Python lists, never from the query code.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection

from campaigns.models import Signature
from mailings.models import Delivery
from mailings.segments import segment_audience, segment_count
from supporters.models import Engagement, Segment, SegmentCondition, Supporter
from tests.factories import MailingFactory, PetitionFactory, TagFactory

Kind = SegmentCondition.Kind
ZONE = "America/New_York"
NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
LANGUAGES = ("en", "ru")
COUNTRIES = ("GB", "RU", "DE", "")
SOURCES = ("import", "petition-a", "", "whatsapp")
DAYS = (None, 7, 60, 200)


@dataclass
class Person:
    """What the pure-Python reading knows of one supporter."""

    id: int
    mailable: bool
    language: str
    country: str
    source: str
    created_at: datetime
    tag_ids: set[int] = field(default_factory=set)
    # (petition id, mailing id or None, created_at)
    signatures: list[tuple[int, int | None, datetime]] = field(default_factory=list)
    # (mailing id, status, sent_at, opened_at, clicked_at)
    deliveries: list[tuple] = field(default_factory=list)
    engagement: tuple[datetime, int] | None = None  # (last_engaged_at, mailings_since_engaged)


@dataclass
class World:
    people: list[Person]
    tag_ids: list[int]
    petition_ids: list[int]
    mailing_ids: list[int]


def build_world(seed: int, size: int = 120) -> World:
    """Write a random population to the database and return what it holds, as plain data."""
    rng = random.Random(seed)
    tags = [TagFactory().pk for _ in range(3)]
    petitions = [PetitionFactory().pk for _ in range(3)]
    mailings = [MailingFactory().pk for _ in range(3)]
    zone = ZoneInfo(ZONE)

    def moment_within(days: int) -> datetime:
        return NOW - timedelta(seconds=rng.randint(0, days * 86400))

    people: list[Person] = []
    for n in range(size):
        # Some join within minutes of midnight in the campaigner's zone, so that a date read
        # in UTC would put them on the wrong side of a "joined before" day.
        if rng.random() < 0.3:
            day = date(2026, 1, 1) + timedelta(days=rng.randint(0, 150))
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            created_at = (midnight + timedelta(minutes=rng.choice((-30, -1, 0, 1, 30)))).astimezone(
                UTC
            )
        else:
            created_at = moment_within(500)
        status = rng.choice(["subscribed"] * 6 + ["unsubscribed", "bounced", "sunset"])
        paused = status == "subscribed" and rng.random() < 0.1
        supporter = Supporter.objects.create(
            email=f"person{seed}-{n}@example.org",
            language=rng.choice(LANGUAGES),
            country=rng.choice(COUNTRIES),
            source=rng.choice(SOURCES),
            status=status,
            paused_until=NOW + timedelta(days=3) if paused else None,
        )
        Supporter.objects.filter(pk=supporter.pk).update(created_at=created_at)
        person = Person(
            id=supporter.pk,
            mailable=status == "subscribed" and not paused,
            language=supporter.language,
            country=supporter.country.code or "",
            source=supporter.source,
            created_at=created_at,
        )
        person.tag_ids = set(rng.sample(tags, rng.randint(0, len(tags))))
        supporter.tags.set(person.tag_ids)
        for petition_id in rng.sample(petitions, rng.randint(0, len(petitions))):
            mailing_id = rng.choice([None, None, *mailings])
            signed_at = moment_within(300)
            signature = Signature.objects.create(
                petition_id=petition_id, supporter=supporter, mailing_id=mailing_id
            )
            Signature.objects.filter(pk=signature.pk).update(created_at=signed_at)
            person.signatures.append((petition_id, mailing_id, signed_at))
        for mailing_id in rng.sample(mailings, rng.randint(0, len(mailings))):
            status = rng.choice(["sent", "sent", "sent", "failed", "skipped", "pending"])
            sent_at = moment_within(300) if status == "sent" else None
            opened_at = clicked_at = None
            if sent_at and rng.random() < 0.5:
                opened_at = sent_at + timedelta(hours=rng.randint(0, 24 * 100))
                opened_at = min(opened_at, NOW)
                if rng.random() < 0.5:
                    clicked_at = opened_at + timedelta(minutes=rng.randint(0, 600))
                    clicked_at = min(clicked_at, NOW)
            Delivery.objects.create(
                mailing_id=mailing_id,
                supporter=supporter,
                status=status,
                sent_at=sent_at,
                opened_at=opened_at,
                clicked_at=clicked_at,
            )
            person.deliveries.append((mailing_id, status, sent_at, opened_at, clicked_at))
        if rng.random() < 0.7:
            last_engaged_at = moment_within(400)
            mailings_since = rng.randint(0, 20)
            Engagement.objects.create(
                supporter=supporter,
                last_engaged_at=last_engaged_at,
                mailings_since_engaged=mailings_since,
            )
            person.engagement = (last_engaged_at, mailings_since)
        people.append(person)
    return World(people=people, tag_ids=tags, petition_ids=petitions, mailing_ids=mailings)


def tier_of(person: Person) -> str:
    """The tiers as supporters/engagement.py's docstring states them, from plain data."""
    active_since = NOW - timedelta(days=settings.RALLY_ENGAGEMENT_ACTIVE_DAYS)
    dormant_before = NOW - timedelta(days=settings.RALLY_ENGAGEMENT_DORMANT_DAYS)
    if person.engagement is None:
        return "active" if person.created_at >= active_since else "lapsing"
    last_engaged_at, mailings_since = person.engagement
    if last_engaged_at >= active_since:
        return "active"
    if (
        last_engaged_at < dormant_before
        and mailings_since >= settings.RALLY_ENGAGEMENT_DORMANT_MAILINGS
    ):
        return "dormant"
    return "lapsing"


def matches(person: Person, condition: SegmentCondition) -> bool:
    """Say whether one person meets one condition, read from plain data."""
    since = NOW - timedelta(days=condition.days) if condition.days else None

    def recent(moment: datetime | None) -> bool:
        return moment is not None and (since is None or moment >= since)

    def mailing_fits(mailing_id) -> bool:
        return condition.mailing_id is None or mailing_id == condition.mailing_id

    kind = condition.kind
    if kind == Kind.HAS_TAG:
        found = condition.tag_id in person.tag_ids
    elif kind == Kind.SIGNED_PETITION:
        found = any(p == condition.petition_id and recent(at) for p, _, at in person.signatures)
    elif kind == Kind.RECEIVED:
        found = any(
            status == "sent" and mailing_fits(m) and (since is None or recent(sent_at))
            for m, status, sent_at, _, _ in person.deliveries
        )
    elif kind == Kind.OPENED:
        found = any(mailing_fits(m) and recent(opened) for m, _, _, opened, _ in person.deliveries)
    elif kind == Kind.CLICKED:
        found = any(mailing_fits(m) and recent(click) for m, _, _, _, click in person.deliveries)
    elif kind == Kind.SIGNED_FROM_MAILING:
        found = any(
            m is not None and mailing_fits(m) and recent(at) for _, m, at in person.signatures
        )
    elif kind == Kind.LANGUAGE:
        found = person.language == condition.language
    elif kind == Kind.COUNTRY:
        found = person.country == str(condition.country)
    elif kind == Kind.SOURCE:
        found = person.source == condition.source
    elif kind in (Kind.SUBSCRIBED_BEFORE, Kind.SUBSCRIBED_AFTER):
        joined_on = person.created_at.astimezone(ZoneInfo(ZONE)).date()
        before = joined_on < condition.date
        found = before if kind == Kind.SUBSCRIBED_BEFORE else not before
    elif kind == Kind.ENGAGEMENT_TIER:
        found = tier_of(person) == condition.tier
    else:
        raise AssertionError(kind)
    return found != condition.negate


def expected_members(world: World, match: str, conditions: list[SegmentCondition]) -> set[int]:
    combine = all if match == "all" else any
    return {
        person.id
        for person in world.people
        if person.mailable and (not conditions or combine(matches(person, c) for c in conditions))
    }


def every_condition(world: World, rng: random.Random) -> list[SegmentCondition]:
    """Return one unsaved condition for each kind and value worth asking, each plain."""
    made: list[SegmentCondition] = []
    for tag_id in world.tag_ids:
        made.append(SegmentCondition(kind=Kind.HAS_TAG, tag_id=tag_id))
    for petition_id in world.petition_ids:
        for days in DAYS:
            made.append(
                SegmentCondition(kind=Kind.SIGNED_PETITION, petition_id=petition_id, days=days)
            )
    for kind in (Kind.RECEIVED, Kind.OPENED, Kind.CLICKED, Kind.SIGNED_FROM_MAILING):
        for mailing_id in (None, *world.mailing_ids):
            for days in DAYS:
                made.append(SegmentCondition(kind=kind, mailing_id=mailing_id, days=days))
    made += [SegmentCondition(kind=Kind.LANGUAGE, language=code) for code in LANGUAGES]
    made += [SegmentCondition(kind=Kind.COUNTRY, country=code) for code in COUNTRIES if code]
    made += [SegmentCondition(kind=Kind.SOURCE, source=source) for source in SOURCES if source]
    for person in rng.sample(world.people, 6):
        joined_on = person.created_at.astimezone(ZoneInfo(ZONE)).date()
        for kind in (Kind.SUBSCRIBED_BEFORE, Kind.SUBSCRIBED_AFTER):
            made.append(SegmentCondition(kind=kind, date=joined_on))
            made.append(SegmentCondition(kind=kind, date=joined_on + timedelta(days=1)))
    made += [
        SegmentCondition(kind=Kind.ENGAGEMENT_TIER, tier=tier)
        for tier in SegmentCondition.Tier.values
    ]
    return made


def saved_segment(match: str, conditions: list[SegmentCondition]) -> Segment:
    segment = Segment.objects.create(name=f"segment {Segment.objects.count()}", match=match)
    for condition in conditions:
        condition.pk = None
        condition.segment = segment
        condition.save()
    return segment


def members(segment: Segment) -> set[int]:
    return set(segment_audience(segment, now=NOW).values_list("pk", flat=True))


@pytest.fixture
def campaigner_zone(settings):
    settings.RALLY_CAMPAIGNER_TIMEZONE = ZONE


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2])
def test_each_condition_plain_and_negated_picks_what_python_picks(seed, campaigner_zone):
    world = build_world(seed)
    rng = random.Random(seed)
    wrong = []
    for condition in every_condition(world, rng):
        for negate in (False, True):
            condition.negate = negate
            expected = expected_members(world, "all", [condition])
            got = members(saved_segment("all", [condition]))
            if got != expected:
                wrong.append((str(condition), condition.__dict__, got ^ expected))
    assert not wrong


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [3, 4])
def test_combinations_of_all_and_any_pick_what_python_picks(seed, campaigner_zone):
    world = build_world(seed)
    rng = random.Random(seed)
    pool = every_condition(world, rng)
    wrong = []
    for _ in range(60):
        match = rng.choice(["all", "any"])
        chosen = [
            SegmentCondition(**{**_fields(c), "negate": rng.random() < 0.4})
            for c in rng.sample(pool, rng.randint(1, 4))
        ]
        expected = expected_members(world, match, chosen)
        segment = saved_segment(match, chosen)
        got = members(segment)
        if got != expected:
            wrong.append((match, [c.__dict__ for c in chosen], got ^ expected))
    assert not wrong


@pytest.mark.django_db
def test_a_window_longer_than_a_century_saved_outside_the_form_reads_as_a_century(
    campaigner_zone,
):
    world = build_world(7, size=40)
    condition = SegmentCondition(kind=Kind.RECEIVED, days=2_000_000_000)
    expected = expected_members(world, "all", [SegmentCondition(kind=Kind.RECEIVED)])
    assert members(saved_segment("all", [condition])) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
def test_the_first_and_last_days_of_the_calendar_are_the_start_and_end_of_time(settings, zone):
    settings.RALLY_CAMPAIGNER_TIMEZONE = zone
    world = build_world(8, size=20)
    everyone = expected_members(world, "all", [])
    for kind, day, expected in [
        (Kind.SUBSCRIBED_AFTER, date.min, everyone),
        (Kind.SUBSCRIBED_BEFORE, date.min, set()),
        (Kind.SUBSCRIBED_BEFORE, date.max, everyone),
        (Kind.SUBSCRIBED_AFTER, date.max, set()),
    ]:
        assert members(saved_segment("all", [SegmentCondition(kind=kind, date=day)])) == expected


@pytest.mark.django_db
def test_an_empty_segment_is_everyone_who_may_be_mailed(campaigner_zone):
    world = build_world(5, size=40)
    for match in ("all", "any"):
        segment = saved_segment(match, [])
        assert members(segment) == {p.id for p in world.people if p.mailable}


@pytest.mark.django_db
def test_segment_count_counts_the_audience(campaigner_zone):
    world = build_world(6, size=40)
    segment = saved_segment("any", [SegmentCondition(kind=Kind.LANGUAGE, language="ru")])
    expected = expected_members(world, "any", list(segment.conditions.all()))
    assert segment_count(segment, now=NOW) == len(expected)
    assert segment_count(segment) == len(expected)  # no time in it: now makes no difference


@pytest.mark.django_db
def test_a_count_over_engagement_tiers_counts_the_audience(campaigner_zone):
    # A count that reads a tier is planned otherwise on PostgreSQL (merge joins in one
    # process, mailings/segments.py's _count): the same members, and the caller's settings kept.
    world = build_world(7, size=60)
    Tier = SegmentCondition.Tier
    segments = [
        saved_segment("all", [SegmentCondition(kind=Kind.ENGAGEMENT_TIER, tier=tier)])
        for tier in Tier.values
    ]
    segments.append(
        saved_segment(
            "any",
            [
                SegmentCondition(kind=Kind.ENGAGEMENT_TIER, tier=Tier.DORMANT, negate=True),
                SegmentCondition(kind=Kind.OPENED, days=60),
            ],
        )
    )
    before = _planner_settings()
    for segment in segments:
        expected = expected_members(world, segment.match, list(segment.conditions.all()))
        assert segment_count(segment, now=NOW) == len(expected)
    assert _planner_settings() == before


def _planner_settings() -> list:
    if connection.vendor != "postgresql":
        return []
    shown = []
    with connection.cursor() as cursor:
        for name in ("jit", "random_page_cost", "max_parallel_workers_per_gather"):
            cursor.execute(f"SHOW {name}")
            shown.append(cursor.fetchone()[0])
    return shown


def _fields(condition: SegmentCondition) -> dict:
    names = ("kind", "tag_id", "petition_id", "mailing_id", "days", "language", "country")
    names += ("source", "date", "tier")
    return {name: getattr(condition, name) for name in names}

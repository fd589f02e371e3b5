"""Fuzz every operation of the OSDI API from its own OpenAPI description (schemathesis).

From the description the API serves (api/openapi.py), schemathesis generates requests for
every operation, valid and invalid, and sends them over real HTTP to the live server with a
write-scope token. Every answer must be no 5xx, a status the description lists
for the operation, its content type, and a body that matches the schema it declares.

Random ids name nothing, so a request would never get past its 404 to the body it carries:
the path ids of most requests are replaced by those of real rows made for the test. The
examples are few and fixed (derandomized), so CI runs the same ones in a minute or two; with
HYPOTHESIS_PROFILE=thorough (as tests/security/ reads it) it searches far wider, by hand.
"""

import os
import zlib

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.models import ApiToken
from api.openapi import openapi_document
from api.services.tokens import api_token_create
from mailings.reports.ledger import report_counters_rebuild
from supporters.models import Segment, SegmentCondition, Supporter
from tests.factories import (
    DeliveryFactory,
    MailingFactory,
    PetitionFactory,
    SignatureFactory,
    SupporterFactory,
    TagFactory,
)

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def real_ids(transactional_db) -> dict[str, str]:
    """Rows for requests to find: a petition and its signature, a person, a tag on them, a
    mailing with a report, a segment. Their ids by path parameter name."""
    supporter = SupporterFactory()
    tag = TagFactory(name="fuzz")
    supporter.tags.add(tag)
    tagging = Supporter.tags.through.objects.get(supporter=supporter, tag=tag)
    petition = PetitionFactory()
    signature = SignatureFactory(petition=petition, supporter=supporter)
    mailing = MailingFactory()
    DeliveryFactory(mailing=mailing, supporter=supporter)
    report_counters_rebuild(mailing_id=mailing.pk)
    segment = Segment.objects.create(name="Russian speakers")
    SegmentCondition.objects.create(
        segment=segment, kind=SegmentCondition.Kind.LANGUAGE, language="ru"
    )
    return {
        "person_id": str(supporter.uuid),
        "tag_id": str(tag.pk),
        "tagging_id": str(tagging.pk),
        "petition_id": str(petition.pk),
        "signature_id": str(signature.pk),
        "message_id": str(mailing.pk),
        "query_id": str(segment.pk),
    }


# The description as the API serves it (api/openapi.py); its server is the live server's,
# given to each call.
schema = schemathesis.openapi.from_dict(openapi_document(base_url="http://127.0.0.1/api/osdi/v1"))
# The coverage phase sends every boundary value of every field whatever max_examples says: by
# hand only (thorough), as its cases far outnumber CI's budget.
schema.config.phases.coverage.enabled = THOROUGH


@pytest.fixture
def write_token(transactional_db, settings) -> str:
    # The fuzzer calls faster than an integrator may; the limit itself is tested elsewhere.
    settings.RALLY_API_RATE_LIMIT_PER_MINUTE = 1_000_000
    return api_token_create(name="fuzz", scope=ApiToken.Scope.WRITE).secret


@schema.parametrize()
@settings(
    max_examples=500 if THOROUGH else 10,
    derandomize=not THOROUGH,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_operation_answers_5xx_or_strays_from_its_description(
    case, real_ids, write_token, live_server
):
    # Three requests in four go to real rows: a choice fixed by the case, so runs repeat.
    if case.path_parameters and zlib.crc32(repr(sorted(case.path_parameters.items())).encode()) % 4:
        for name in case.path_parameters:
            if name in real_ids:
                case.path_parameters[name] = real_ids[name]
    case.call_and_validate(
        base_url=f"{live_server.url}/api/osdi/v1",
        headers={"OSDI-API-Token": write_token},
        checks=CHECKS,
    )

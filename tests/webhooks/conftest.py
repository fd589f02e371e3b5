import pytest

from tests.webhooks.receiver import webhook_endpoint
from webhooks.subscribers import subscribed_event_types_forget

SECRET = "whsec-test-0123456789abcdef"  # noqa: S105 -- a test's own secret


@pytest.fixture(autouse=True)
def forget_cached_subscriptions():
    """Each test starts with no cached answer of who listens (rows differ from test to test)."""
    subscribed_event_types_forget()
    yield
    subscribed_event_types_forget()


@pytest.fixture
def endpoint():
    with webhook_endpoint() as receiver:
        yield receiver


@pytest.fixture
def webhook_worker(celery_worker_factory):
    """Start a real worker with short webhook timeouts and a quick sweep."""

    def start(**env):
        settings = {"RALLY_WEBHOOK_TIMEOUT_SECONDS": "2", "RALLY_SWEEP_SECONDS": "1", **env}
        return celery_worker_factory(**settings)

    return start

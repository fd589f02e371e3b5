"""The operator's page: queue lengths, workers alive, each send's last batch; who may see it."""

import re
import socket
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import override_settings
from django.utils import timezone

from mailings.models import Mailing
from mailings.sending import delivery_snapshot, mailing_send_batch
from mailings.sending.tasks import mailing_check_esp_feedback_task
from tests.factories import MailingFactory, SupporterFactory
from tests.processes import wait_for

PAGE = "/admin/operations/workersandqueues/"


def operator(client, username="operator"):
    user = User.objects.create_user(username, password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="operations", codename="view_workersandqueues"
        )
    )
    client.force_login(user)
    return client


def table_rows(html: str, table_id: str) -> list[list[str]]:
    """Return the text of each cell of each body row of the table with this id."""
    table = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert table, f"no table {table_id}"
    body = re.search(r"<tbody>(.*?)</tbody>", table.group(1), re.S).group(1)
    return [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


@pytest.mark.django_db
def test_queue_lengths_are_read_from_redis_with_every_priority_list(client):
    for priority in (None, 0, 6, 9):  # the plain list and two priority lists of the queue
        mailing_check_esp_feedback_task.apply_async((1,), queue="transactional", priority=priority)
    for _ in range(2):
        mailing_check_esp_feedback_task.apply_async((1,), queue="tracking")
    html = operator(client).get(PAGE).content.decode()
    assert table_rows(html, "queues") == [
        ["transactional", "4"],
        ["bulk", "0"],
        ["tracking", "2"],
        ["webhooks", "0"],
    ]
    assert "No worker has recorded a heartbeat" in html


@override_settings(RALLY_HEALTH_WORKER_MAX_AGE_SECONDS=2)
def test_a_running_worker_is_listed_alive_with_its_queues_and_silent_once_killed(
    client, celery_worker_factory
):
    worker = celery_worker_factory(RALLY_WORKER_HEARTBEAT_SECONDS="1")
    operator(client)

    def worker_rows():
        return table_rows(client.get(PAGE).content.decode(), "workers")

    wait_for(
        lambda: '<table id="workers">' in client.get(PAGE).content.decode(),
        timeout=60,
        message=worker.log,
    )
    ((name, queues, _age, state),) = worker_rows()
    assert name.startswith("test") and "@" in name
    assert (queues, state) == ("bulk, tracking, transactional, webhooks", "alive")
    worker.kill()
    wait_for(lambda: worker_rows()[0][3] == "silent", timeout=10, message="still alive")


@pytest.mark.django_db
def test_each_sending_mailing_shows_its_last_batch_from_the_ledger(client, settings):
    settings.RALLY_SEND_BATCH_SIZE = 2
    for number in range(5):
        SupporterFactory(email=f"reader{number}@example.org")
    sending = MailingFactory(
        name="Free them all", status=Mailing.Status.SENDING, started_at=timezone.now()
    )
    delivery_snapshot(mailing_id=sending.pk)
    mailing_send_batch(mailing_id=sending.pk, worker="worker-a:101")
    stalled = MailingFactory(
        name="Stuck appeal",
        status=Mailing.Status.SENDING,
        started_at=timezone.now() - timedelta(hours=1),
    )
    Mailing.objects.filter(pk=stalled.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.RALLY_SEND_STALL_SECONDS + 60)
    )
    MailingFactory(name="Long finished", status=Mailing.Status.SENT)

    html = operator(client).get(PAGE).content.decode()
    rows = table_rows(html, "sends")
    assert [row[0] for row in rows] == ["Stuck appeal", "Free them all"]
    stuck, free = rows
    assert "by worker-a:101" in free[3]
    assert (free[4], free[5]) == ("3", "0")  # 2 sent, 3 pending, none claimed
    assert "stalled" not in free[2]
    assert "stalled" in stuck[2] and stuck[3] == "none yet"
    assert f"/admin/mailings/mailing/{sending.pk}/progress/" in html


@pytest.mark.django_db
def test_the_page_says_redis_is_down_instead_of_failing(client):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        url = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
        with override_settings(REDIS_URL=url, CELERY_BROKER_URL=url):
            response = operator(client).get(PAGE)
    finally:
        closed.close()
    assert response.status_code == 200
    assert "Redis does not answer" in response.content.decode()


@pytest.mark.django_db
def test_only_superusers_and_holders_of_the_permission_see_the_page_and_its_index_link(client):
    assert client.get(PAGE).status_code == 302  # to the admin login

    bare = User.objects.create_user("bare", password="x", is_staff=True)
    bare.user_permissions.set(Permission.objects.filter(content_type__app_label="mailings"))
    client.force_login(bare)  # every mailing permission, not this one
    assert client.get(PAGE).status_code == 403
    assert PAGE not in client.get("/admin/").content.decode()

    operator(client)
    assert client.get(PAGE).status_code == 200
    assert PAGE in client.get("/admin/").content.decode()

    client.force_login(User.objects.create_superuser("root", password="x"))
    assert client.get(PAGE).status_code == 200


@pytest.mark.django_db
def test_the_admin_serves_no_other_url_of_the_tableless_model(client):
    client.force_login(User.objects.create_superuser("root", password="x"))
    for url in ("add/", "1/change/", "1/delete/", "1/history/", "1/"):
        assert client.get(PAGE + url).status_code in (302, 404), url

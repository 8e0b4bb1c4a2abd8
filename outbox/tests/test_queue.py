"""The queue of events out: at most one task per delivery whatever the sweeper does, an org's share of
the queue and the workers (its slots) whatever its backlog, the slots of dead tasks taken over, the
queue's finished rows trimmed. (The worker going on through a database outage: test_e2e.py.)"""

from collections import Counter
from datetime import timedelta

from django.utils import timezone
from django_tasks.base import TaskContext, TaskResultStatus
from django_tasks_db.models import DBTaskResult

from outbox import delivery as engine
from outbox.models import Delivery, DeliveryStatus, SweeperClock
from outbox.tests.conftest import HOOK_URL, make_subscription
from outbox.tests.test_delivery import record_read


def queued_tasks():
    """{delivery id: how many deliver tasks are queued or running for it}."""
    rows = DBTaskResult.objects.filter(
        task_path=engine.deliver.module_path, status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING]
    )
    return Counter(args_kwargs["args"][0] for args_kwargs in rows.values_list("args_kwargs", flat=True))


def run_queue():
    """Run the ready deliver tasks in queue order, one at a time as a worker does, until none is left
    (the tasks those runs queue included); returns how many ran."""
    ran = 0
    while row := DBTaskResult.objects.ready().filter(task_path=engine.deliver.module_path).first():
        row.claim("test-worker")
        row.task.call(TaskContext(task_result=row.task_result), *row.args_kwargs["args"])
        row.set_successful(None)
        ran += 1
    return ran


def sweep():
    engine.ensure_sweeper()
    return engine.sweep_once(SweeperClock.objects.get().token)


def test_sweeps_never_queue_a_second_task_for_a_delivery(org, subscription, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(20):
            record_read(org)
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))  # overdue: the workers are busy

    for _ in range(5):
        sweep()

    tasks = queued_tasks()
    assert max(tasks.values()) == 1
    assert sum(tasks.values()) == 2  # the org's slots; the 18 others wait in the database


def test_an_orgs_backlog_holds_its_slots_and_no_more_so_another_orgs_event_is_next(
    org, subscription, other_org, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_ORG = 3
    settings.WEBHOOK_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 2
    make_subscription(org, url="https://second.example.com/kirim")
    make_subscription(other_org, url="https://other.example.com/kirim")
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(100):
            record_read(org)  # a burst: 200 deliveries
    with django_capture_on_commit_callbacks(execute=True):
        record_read(other_org)

    tasks = queued_tasks()
    ours = Delivery.objects.filter(org=org, pk__in=tasks)
    assert ours.count() == 3  # the org's slots: the other org's task is queued behind 3 tasks, not 200
    assert sorted(Counter(ours.values_list("subscription_id", flat=True)).values()) == [1, 2]
    assert Delivery.objects.get(org=other_org).pk in tasks


def test_each_settled_attempt_gives_its_slot_to_the_orgs_next_due_delivery(
    org, subscription, receiver, django_capture_on_commit_callbacks
):
    receiver.post(HOOK_URL, status=200)
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(7):
            record_read(org)
    assert len(queued_tasks()) == 2

    assert run_queue() == 7  # no sweep: each attempt's end queued the next delivery

    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert not Delivery.objects.exclude(task_id="").exists()


def test_a_task_that_is_not_its_deliverys_claims_nothing(
    org, subscription, receiver, django_capture_on_commit_callbacks
):
    receiver.post(HOOK_URL, status=200)
    with django_capture_on_commit_callbacks(execute=True):
        record_read(org)
    delivery = Delivery.objects.get()
    stray = engine.deliver.enqueue(delivery.pk)  # queued by older code, say, with no slot

    assert engine.attempt_delivery(delivery.pk, task_id=stray.id) is None
    assert not receiver.calls and Delivery.objects.get().task_id == delivery.task_id  # the slot is not its

    assert isinstance(engine.attempt_delivery(delivery.pk, task_id=delivery.task_id), engine.Claim)
    assert len(receiver.calls) == 1


def test_a_task_its_worker_left_running_is_marked_failed_and_its_delivery_gets_a_new_task(
    org, subscription, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record_read(org)
    task = DBTaskResult.objects.get(task_path=engine.deliver.module_path)
    long_ago = timezone.now() - timedelta(minutes=1)
    # Its worker claimed the task and the delivery, then was killed (or lost the database for good).
    DBTaskResult.objects.filter(pk=task.pk).update(status=TaskResultStatus.RUNNING, started_at=long_ago)
    Delivery.objects.update(attempts=1, leased_until=long_ago)

    sweep()

    task.refresh_from_db()
    assert task.status == TaskResultStatus.FAILED and task.exception_class_path == "outbox.delivery.WorkerLost"
    assert not DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).exists()
    delivery = Delivery.objects.get()
    assert queued_tasks() == {delivery.pk: 1} and delivery.task_id not in ("", str(task.pk))


def test_a_delivery_whose_task_failed_before_its_claim_gets_another_a_sweep_later(
    org, subscription, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        record_read(org)
    first = Delivery.objects.get().task_id
    DBTaskResult.objects.filter(pk=first).update(status=TaskResultStatus.FAILED, finished_at=timezone.now())

    sweep()  # queued less than a sweep ago: its task may not have been asked yet
    assert Delivery.objects.get().task_id == first

    Delivery.objects.update(queued_at=timezone.now() - timedelta(seconds=2 * settings.WEBHOOK_SWEEP_INTERVAL))
    sweep()
    delivery = Delivery.objects.get()
    assert delivery.task_id != first and queued_tasks() == {delivery.pk: 1}


def test_the_sweeper_trims_finished_task_rows(db):
    now = timezone.now()
    rows = {}
    for name, status, finished_at in [
        ("old success", TaskResultStatus.SUCCESSFUL, now - timedelta(minutes=11)),
        ("old failure", TaskResultStatus.FAILED, now - timedelta(minutes=11)),
        ("recent success", TaskResultStatus.SUCCESSFUL, now - timedelta(minutes=1)),
        ("queued", TaskResultStatus.READY, None),
    ]:
        rows[name] = engine.deliver.enqueue(1).id
        DBTaskResult.objects.filter(pk=rows[name]).update(status=status, finished_at=finished_at)

    sweep()

    left = set(DBTaskResult.objects.filter(task_path=engine.deliver.module_path).values_list("pk", flat=True))
    assert {str(pk) for pk in left} == {rows["recent success"], rows["queued"]}

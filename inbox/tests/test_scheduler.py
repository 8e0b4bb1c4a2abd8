"""`manage.py scheduler`: each periodic job runs once per period however many schedulers run, held by
the job's row in the database (inbox/services/scheduler.py), never by a process's memory."""

import os
import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from conftest import fire_at_once, postgres_only
from dev.dburl import database_url
from inbox.management.commands.scheduler import scheduled_jobs
from inbox.models import ScheduledJob
from inbox.services.scheduler import Job, jobs_register, jobs_run_due
from outbox.models import SweeperClock

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)  # the start of a minute, of ten and of an hour


class Counting:
    """Jobs that count their runs; `hold` makes a run wait until the test lets it finish."""

    def __init__(self):
        self.runs = []
        self.hold = None
        self.lock = threading.Lock()

    def job(self, name, seconds):
        def run():
            with self.lock:
                self.runs.append(name)
            if self.hold:
                self.hold.wait(10)

        return Job(name, seconds, run)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_schedulers_at_the_same_moment_run_each_job_once_per_period():
    counting = Counting()
    jobs = [counting.job("every_minute", 60), counting.job("hourly", 3600)]
    jobs_register(jobs)

    for now in (T0, T0 + timedelta(seconds=30), T0 + timedelta(seconds=61), T0 + timedelta(seconds=119)):
        fire_at_once(2, lambda now=now: jobs_run_due(jobs, now))  # as schedulers on two hosts

    # minute 0 and minute 1 for the first; hour 0 once for the second
    assert sorted(counting.runs) == ["every_minute", "every_minute", "hourly"]
    assert ScheduledJob.objects.get(name="every_minute").period == int((T0 + timedelta(seconds=61)).timestamp()) // 60
    assert ScheduledJob.objects.filter(done=True).count() == 2


@pytest.mark.django_db
def test_a_failed_run_is_logged_and_the_job_runs_again_the_next_period(caplog):
    runs = []

    def fails():
        runs.append(1)
        raise RuntimeError("Meta is away")

    jobs = [Job("flaky", 60, fails)]
    jobs_register(jobs)

    assert jobs_run_due(jobs, T0) == ["flaky"]
    assert jobs_run_due(jobs, T0 + timedelta(seconds=10)) == []  # done for this period, though it failed
    assert jobs_run_due(jobs, T0 + timedelta(seconds=60)) == ["flaky"]
    assert len(runs) == 2
    assert "scheduler: flaky failed; it runs again next period" in caplog.text


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_run_still_going_keeps_the_next_period_until_its_lease_runs_out():
    counting = Counting()
    counting.hold = threading.Event()
    jobs = [counting.job("slow", 60)]
    jobs_register(jobs)
    first = threading.Thread(target=lambda: (jobs_run_due(jobs, T0), connection.close()))
    first.start()
    try:
        while not counting.runs:
            first.join(0.05)
        # the next period has come while the first run goes on: not a second run beside it
        assert jobs_run_due(jobs, T0 + timedelta(seconds=60)) == []
        # a run past its lease is a scheduler that died: the period it finds is taken
        assert jobs_run_due(jobs, T0 + timedelta(minutes=11)) == ["slow"]
    finally:
        counting.hold.set()
        first.join(10)
    assert counting.runs == ["slow", "slow"]


@pytest.mark.django_db
def test_a_job_with_period_zero_never_runs():
    counting = Counting()
    jobs = [counting.job("off", 0)]
    jobs_register(jobs)
    assert jobs_run_due(jobs, T0) == []
    assert counting.runs == []


@pytest.mark.django_db(transaction=True)  # the command hands its connections back between looks
def test_the_scheduler_runs_the_purge_the_sweeper_and_the_template_sync_once(caplog):
    caplog.set_level("INFO", logger="kirim.scheduler")
    call_command("scheduler", "--once")

    assert {job.name for job in scheduled_jobs()} == set(ScheduledJob.objects.values_list("name", flat=True))
    assert set(ScheduledJob.objects.values_list("done", flat=True)) == {True}
    assert "purge_expired: Applied 0 early status(es)" in caplog.text
    assert SweeperClock.objects.exists()  # the sweep chain was started
    call_command("scheduler", "--once")  # a second look in the same periods runs nothing
    assert caplog.text.count("purge_expired runs for period") == 1


RAN = re.compile(r"scheduler: (\w+) runs for period (\d+)")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_scheduler_processes_run_each_job_once_per_period(tmp_path):
    """Two `manage.py scheduler` processes, periods of one second, for a few seconds: every (job,
    period) ran exactly once, on one of them, and both took part."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "SCHEDULE_PURGE_EXPIRED": "1",
        "SCHEDULE_SWEEPER": "1",
        "SCHEDULE_SYNC_TEMPLATES": "2",
        "LOG_LEVEL": "INFO",
    }
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    command = [sys.executable, "manage.py", "scheduler", "--tick", "0.05"]
    schedulers = [
        subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=log.open("w"))
        for log in logs
    ]
    try:
        wait_for_runs(logs, schedulers)
    finally:
        for scheduler in schedulers:
            scheduler.terminate()
        for scheduler in schedulers:
            assert scheduler.wait(30) == 0  # SIGTERM: stops after the job it runs, cleanly

    assert_each_job_ran_once_per_period(logs, {"purge_expired", "sweeper", "sync_templates"})


def wait_for_runs(logs, schedulers):
    """Until each scheduler (logging at INFO into its file of `logs`) has run something and four purge
    periods have passed; a minute at most."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = [RAN.findall(log.read_text()) for log in logs]
        purge_periods = {period for ran in runs for job, period in ran if job == "purge_expired"}
        if all(runs) and len(purge_periods) >= 4:
            return
        if any(scheduler.poll() is not None for scheduler in schedulers):
            pytest.fail("a scheduler stopped:\n" + "\n".join(log.read_text() for log in logs))
        threading.Event().wait(0.2)
    pytest.fail("the schedulers ran too little in a minute:\n" + "\n".join(log.read_text() for log in logs))


def assert_each_job_ran_once_per_period(logs, jobs):
    """No (job, period) ran twice over all the schedulers' logs, each job ran, and the one-second
    jobs skipped no period."""
    every_run = [run for log in logs for run in RAN.findall(log.read_text())]
    assert len(every_run) == len(set(every_run)), "a job ran twice in one period"
    assert {job for job, _ in every_run} == jobs
    for job in ("purge_expired", "sweeper"):
        periods = sorted(int(period) for name, period in every_run if name == job)
        assert periods == list(range(periods[0], periods[-1] + 1)), f"{job} skipped a period"

from django.db import models


class ScheduledJob(models.Model):
    """A periodic job of `manage.py scheduler` and the period it was last claimed for. Schedulers on any
    number of hosts claim a period with one conditional UPDATE of this row, so each period runs once;
    a claim whose scheduler died before finishing is taken over once its lease has run out."""

    name = models.CharField(max_length=64, primary_key=True)
    period = models.BigIntegerField(default=-1)  # the last claimed: seconds since the epoch // the job's period
    done = models.BooleanField(default=True)  # the claimed period's run finished (or failed, and was logged)
    claim = models.CharField(max_length=100, blank=True)  # host, process and a random part: whose run it is
    leased_until = models.DateTimeField(null=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    def __str__(self):
        return f"{self.name} (period {self.period}, {'done' if self.done else 'running'})"

from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "outbox"
    verbose_name = "Events out"

    def ready(self) -> None:
        from core import health, metrics
        from outbox import facts

        health.register_detail("events_out", facts.backlog)
        health.register_detail("workers", facts.workers)
        metrics.register_database_facts(facts.metric_families)

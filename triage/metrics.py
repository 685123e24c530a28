"""Queue metrics for Prometheus, added to every /metrics scrape (telehealth.observability) in
TriageConfig.ready()."""

from prometheus_client.core import GaugeMetricFamily


class QueueDepthCollector:
    """Patients waiting (checked in, not yet seen), counted from the database at scrape time."""

    def collect(self):
        from consults.models import Visit

        gauge = GaugeMetricFamily(
            "telehealth_queue_depth", "Visits checked in and waiting to be seen."
        )
        gauge.add_metric([], Visit.objects.filter(status="checked_in").count())
        yield gauge

"""The Temporal SDK's metrics as `/metrics` serves them: each update in its series and bucket."""

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from truffle.runtime.metrics import LATENCY_BUCKETS, TemporalSdkMetrics, exposition


def test_sdk_latencies_land_in_their_series_and_buckets() -> None:
    registry = CollectorRegistry(auto_describe=True)
    sdk = TemporalSdkMetrics(registry, "WARNING")
    meter = sdk.runtime.metric_meter
    latency = meter.create_histogram_float("poll_latency", unit="duration")
    on_a = latency.with_additional_attributes({"task_queue": "a", "kind": "x"})
    on_b = latency.with_additional_attributes({"task_queue": "b"})
    for seconds in (0.005, 0.02, 0.02, 400.0):  # on a bound, inside, inside, past the last
        on_a.record(seconds)
    sdk.drain()  # the same attribute sets again, in a later drain
    on_a.record(1.0)
    on_b.record(0.001)

    body, _ = exposition(registry)
    samples = [
        sample
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if sample.name.startswith("temporal_poll_latency_seconds")
    ]

    def value(suffix: str, **labels: str) -> float:
        (found,) = [
            sample.value
            for sample in samples
            if sample.name == f"temporal_poll_latency_seconds_{suffix}"
            and labels.items() <= sample.labels.items()
            and ("le" in labels or "le" not in sample.labels)
        ]
        return found

    assert value("bucket", task_queue="a", kind="x", le="0.005") == 1
    assert value("bucket", task_queue="a", kind="x", le="0.025") == 3
    assert value("bucket", task_queue="a", kind="x", le="1.0") == 4
    assert value("bucket", task_queue="a", kind="x", le=repr(float(LATENCY_BUCKETS[-1]))) == 4
    assert value("bucket", task_queue="a", kind="x", le="+Inf") == 5
    assert value("count", task_queue="a", kind="x") == 5
    assert value("sum", task_queue="a", kind="x") == 401.045
    assert value("bucket", task_queue="b", le="0.005") == 1
    assert value("count", task_queue="b") == 1

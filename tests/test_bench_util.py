"""The bench's histogram quantiles, as a table: the bucket bound that holds a quantile, and
the estimate inside it that Prometheus' histogram_quantile makes."""

from __future__ import annotations

import math

import pytest

from bench.util import bucket_estimate, bucket_quantile

INF = math.inf
LAG = {0.005: 10.0, 0.01: 50.0, 0.02: 99.5, 0.05: 100.0, INF: 100.0}

CASES = [
    # buckets (cumulative), q, bound, estimate
    (LAG, 0.99, 0.02, 0.01 + 0.01 * 49 / 49.5),
    (LAG, 0.5, 0.01, 0.01),
    (LAG, 0.05, 0.005, 0.0025),  # the first bucket counts from 0
    (LAG, 0.3, 0.01, 0.005 + 0.005 * 20 / 40),
    ({0.01: 0.0, 0.02: 0.0, INF: 10.0}, 0.5, INF, 0.02),  # above the largest bound
    ({0.01: 0.0, INF: 0.0}, 0.99, None, None),  # no observation
    ({}, 0.99, None, None),
]


@pytest.mark.parametrize(("buckets", "q", "bound", "estimate"), CASES)
def test_quantiles(buckets: dict[float, float], q: float, bound: float | None,
                   estimate: float | None) -> None:
    assert bucket_quantile(buckets, q) == bound
    got = bucket_estimate(buckets, q)
    assert got == pytest.approx(estimate) if estimate is not None else got is None
    if got is not None and bound is not None and not math.isinf(bound):
        assert got <= bound

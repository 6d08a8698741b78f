"""Reliability: bad input, faults and stale state end as named failures of one task."""

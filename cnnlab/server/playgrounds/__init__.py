"""Computations behind the lab's playgrounds: the page only draws what these return.

Each playground is one module with one function ``(request JSON dict) -> response dict``, served
as ``POST /api/play/<name>``. Every number comes from cnnlab's ops; a module lays the same
arithmetic out step by step (windows, products, sums) so the page can animate it. Bad input
raises ``BadRequest`` naming what was expected and what was received, before any work.
"""
from __future__ import annotations

from cnnlab.server.playgrounds.conv import conv_trace
from cnnlab.server.playgrounds.params import parameter_counts
from cnnlab.server.playgrounds.pool import pool_trace
from cnnlab.server.playgrounds.receptive import receptive_fields

#: URL name -> computation; app.py serves each as POST /api/play/<name>
ENDPOINTS = {
    "conv": conv_trace,
    "pool": pool_trace,
    "params": parameter_counts,
    "receptive": receptive_fields,
}

__all__ = ["ENDPOINTS", "conv_trace", "pool_trace", "parameter_counts", "receptive_fields"]

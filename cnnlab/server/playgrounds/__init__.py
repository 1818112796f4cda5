"""Computations behind the lab's playgrounds: the page only draws what these return.

Each playground is one module with one function ``(request JSON dict) -> response dict``, served
as ``POST /api/play/<name>``. Every number comes from cnnlab's ops; a module lays the same
arithmetic out step by step (windows, products, sums) so the page can animate it. Bad input
raises ``BadRequest`` naming what was expected and what was received, before any work.
"""
from __future__ import annotations

from cnnlab.server.playgrounds.conv import conv_trace
from cnnlab.server.playgrounds.conv_presets import conv_presets
from cnnlab.server.playgrounds.equivariance import equivariance_play
from cnnlab.server.playgrounds.matrix import conv_as_matrix
from cnnlab.server.playgrounds.ox import ox_pipeline
from cnnlab.server.playgrounds.params import parameter_counts
from cnnlab.server.playgrounds.pool import pool_presets, pool_trace
from cnnlab.server.playgrounds.receptive import receptive_fields

#: URL name -> computation; app.py serves each as POST /api/play/<name>
ENDPOINTS = {
    "conv": conv_trace,
    "pool": pool_trace,
    "pool-presets": pool_presets,
    "params": parameter_counts,
    "ox": ox_pipeline,
    "equivariance": equivariance_play,
    "matrix": conv_as_matrix,
    "receptive": receptive_fields,
}

#: conv_presets(model, label) reads the live model: app.py serves it as GET /api/play/conv-presets

__all__ = ["ENDPOINTS", "conv_trace", "conv_presets", "pool_trace", "pool_presets", "parameter_counts", "ox_pipeline",
           "equivariance_play", "conv_as_matrix", "receptive_fields"]

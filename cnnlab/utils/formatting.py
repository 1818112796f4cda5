"""How settings are printed and stored: one form for pairs such as kernel sizes and strides."""
from __future__ import annotations

__all__ = ["compact_pair", "format_pair"]


def compact_pair(pair: tuple[int, int]):
    """``3`` for (3, 3), ``[3, 5]`` for (3, 5): the JSON- and repr-friendly form."""
    return pair[0] if pair[0] == pair[1] else [pair[0], pair[1]]


def format_pair(pair: tuple[int, int]) -> str:
    """``3`` for (3, 3), ``(3, 5)`` otherwise, as PyTorch prints them."""
    return str(pair[0]) if pair[0] == pair[1] else str(tuple(pair))

"""Shape arithmetic shared by every op: the output-size formula lives here, once.

The size of a convolution or pooling output along one axis is::

    out = floor((n + 2 * p - k) / s) + 1

for an input of size ``n``, kernel ``k``, stride ``s`` and zero padding ``p`` on each side.
"""
from __future__ import annotations

from numbers import Integral

Pair = tuple[int, int]


def conv_output_size(n: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution or pooling window sliding over ``n`` positions.

    Args:
        n: input length (height or width).
        kernel: window length.
        stride: step between windows.
        padding: zeros added on each side.

    Returns:
        ``floor((n + 2 * padding - kernel) / stride) + 1``.

    Raises:
        ValueError: if the kernel does not fit in the padded input.

    Example:
        >>> conv_output_size(28, 3, 1, 1)
        28
        >>> conv_output_size(7, 3)
        5
        >>> conv_output_size(28, 2, 2)
        14
    """
    if kernel > n + 2 * padding:
        raise ValueError(
            f"kernel size {kernel} is larger than the padded input size {n + 2 * padding} "
            f"(input {n} + 2*padding {padding}); use a smaller kernel or more padding."
        )
    return (n + 2 * padding - kernel) // stride + 1


def to_pair(value, name: str, *, minimum: int = 1) -> Pair:
    """Turn an int or a pair of ints into a pair, checking each is an int >= ``minimum``.

    Example:
        >>> to_pair(3, "kernel_size")
        (3, 3)
        >>> to_pair((2, 1), "stride")
        (2, 1)
    """
    if isinstance(value, Integral) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, Integral) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints; received {value!r}.")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}; received {value!r}.")
    return pair


def resolve_padding(padding, kernel_size: Pair, stride: Pair) -> Pair:
    """Turn a padding spec (int, pair, ``"valid"`` or ``"same"``) into a pair of ints.

    ``"same"`` keeps H and W unchanged; it needs stride 1 and odd kernels (symmetric padding).

    Example:
        >>> resolve_padding("same", (5, 3), (1, 1))
        (2, 1)
        >>> resolve_padding("valid", (3, 3), (1, 1))
        (0, 0)
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1; received stride={stride}.")
            if kernel_size[0] % 2 == 0 or kernel_size[1] % 2 == 0:
                raise ValueError(
                    f"padding='same' needs odd kernel sizes (symmetric zero padding); "
                    f"received kernel_size={kernel_size}."
                )
            return (kernel_size[0] // 2, kernel_size[1] // 2)
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same'; received {padding!r}.")
    return to_pair(padding, "padding", minimum=0)

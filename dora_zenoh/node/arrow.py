"""``event["value"]`` with pyarrow installed: a received payload as a pyarrow array, built lazily.

Building a pyarrow array is costly in a node just woken by a message (see
docs/design/values.md), and a node that only forwards ``event["value"]`` never needs
the array at all: ``send_output`` hands Zenoh the received buffer as it is. So the
value is an :class:`ArrowValue` that becomes the real array on first use: every
attribute and method of the array, ``len``, indexing, iteration, comparison, ``repr``,
and the numpy (``np.asarray``) and Arrow (``pa.array(value)``, ``__arrow_c_array__``)
conversion protocols work as on the array itself. ``value.to_arrow()`` returns the
genuine ``pyarrow.Array`` (for ``isinstance`` checks or pyarrow compute functions).
"""
from __future__ import annotations

from typing import Any

from dora_zenoh.wire import codec as wire


class ArrowValue:
    """A received payload that acts as the pyarrow array it encodes (see module docstring)."""

    __slots__ = ("_sample", "_array")

    def __init__(self, sample: Any) -> None:
        self._sample = sample  # a zenoh.Sample, or None for a timer tick (an empty array)
        self._array: Any = None

    def to_arrow(self) -> Any:
        """The real ``pyarrow.Array`` (built once, over the received bytes: no extra copy)."""
        if self._array is None:
            sample = self._sample
            if sample is None:
                self._array = wire.to_arrow(b"", False)
            else:
                self._array = wire.to_arrow(sample.payload.to_bytes(), wire.is_arrow_stream(sample.encoding))
        return self._array

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_sample", "_array"):
            raise AttributeError(name)
        return getattr(self.to_arrow(), name)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self.to_arrow())) | {"to_arrow"})

    def __len__(self) -> int:
        sample = self._sample
        if sample is None:
            return 0
        if not wire.is_arrow_stream(sample.encoding):
            return len(sample.payload)
        return len(self.to_arrow())

    def __bool__(self) -> bool:
        return len(self) > 0

    def __getitem__(self, index: Any) -> Any:
        return self.to_arrow()[index]

    def __iter__(self) -> Any:
        return iter(self.to_arrow())

    def __eq__(self, other: object) -> Any:
        return self.to_arrow() == (other.to_arrow() if isinstance(other, ArrowValue) else other)

    def __ne__(self, other: object) -> Any:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # like pyarrow arrays

    def __repr__(self) -> str:
        return repr(self.to_arrow())

    def __str__(self) -> str:
        return str(self.to_arrow())

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        values = self.to_arrow().to_numpy(zero_copy_only=False)
        return values if dtype is None else np.asarray(values, dtype=dtype)

    def __arrow_array__(self, type: Any = None) -> Any:
        array = self.to_arrow()
        return array if type is None else array.cast(type)

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self.to_arrow().__arrow_c_array__(requested_schema)

    def __reduce__(self) -> Any:
        return (_identity, (self.to_arrow(),))


def _identity(value: Any) -> Any:
    return value

"""Modules whose constant float64 buffers survive casts of the weights' dtype."""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["Float64BufferModule"]


class Float64BufferModule(torch.nn.Module):
    """A module whose own float64 buffers stay float64 under ``.to(dtype)``/``.float()``.

    Physical constants (reference energies, AEV shifts and angle sections) must not be rounded when
    a model is cast to float32 and back, or a float64 evaluation would silently differ. Devices
    still follow the cast; forward passes cast the constants to the working dtype themselves.
    """

    def _apply(self, fn: Any, recurse: bool = True) -> Float64BufferModule:
        constants = {
            name: buffer
            for name, buffer in self._buffers.items()
            if buffer is not None and buffer.dtype == torch.float64
        }
        super()._apply(fn, recurse)
        for name, buffer in constants.items():
            self._buffers[name] = buffer.to(device=self._buffers[name].device)
        return self

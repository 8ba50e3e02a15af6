"""The process-wide settings the package must never change (developers' guide, rule 7).

This module imports only :mod:`os`, :mod:`typing` and :mod:`torch`, so that a test can load it
by file path and record the settings *before* the package is first imported.
"""

from __future__ import annotations

import os
from typing import Any

import torch

__all__ = ["global_torch_state"]


def global_torch_state() -> dict[str, Any]:
    """Everything a model, a calculator or an import of the package must leave unchanged.

    Returns:
        torch's default dtype, intra- and inter-op thread counts, grad mode, deterministic
        algorithms, TF32 and cuDNN benchmark flags, float32 matmul precision, and a copy of
        ``os.environ``.
    """
    return {
        "default_dtype": str(torch.get_default_dtype()),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "grad_enabled": torch.is_grad_enabled(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "environment": dict(os.environ),
    }

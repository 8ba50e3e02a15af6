"""Shared test configuration: reference-data location and one torch thread per test process.

Tests run under pytest-xdist with one process per core; a single intra-op thread per process
avoids OpenMP oversubscription (which makes small-tensor ops tens of times slower). This is the
test harness's choice; the package itself never changes torch's thread count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ase_mlpot.models.ani import ANIEnsemble
from ase_mlpot.models.ani.convert import model_from_published, read_published_ani

#: ../shared/data beside the checkout (CI has it there); the package never needs it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"reference data folder {SHARED_DATA} is missing (expected beside the checkout)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def ani1ccx_model(shared_data: Path) -> ANIEnsemble:
    return model_from_published(
        read_published_ani(shared_data / "ani-neurochem-weights" / "ani-1ccx_8x.info")
    )


@pytest.fixture(scope="session")
def ani1x_model(shared_data: Path) -> ANIEnsemble:
    return model_from_published(
        read_published_ani(shared_data / "ani-neurochem-weights" / "ani-1x_8x.info")
    )

"""Shared test fixtures."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: one torch thread avoids OpenMP hand-off costs on a busy machine (restored after)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's AppTest runs a page as ``__main__`` and leaves it in sys.modules; a later test that
    spawns processes (the sweep's --jobs pool) would then re-run that page in every child. Restore it."""
    import sys

    main = sys.modules.get("__main__")
    yield
    if main is not None and sys.modules.get("__main__") is not main:
        sys.modules["__main__"] = main

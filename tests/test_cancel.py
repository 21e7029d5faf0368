"""Cooperative cancellation: a stop request (set by the CLI's signal handlers) ends long loops even
when the KeyboardInterrupt raised by the handler itself was swallowed by a finaliser."""

import numpy as np
import pytest
import torch

from jnecore import ResidualMLP, compute_jne, fit_encoder
from jnecore.cancel import check_stop, clear_stop, request_stop


@pytest.fixture(autouse=True)
def _clear():
    clear_stop()
    yield
    clear_stop()


def test_stop_request_interrupts_fit_and_jne():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 3)).astype(np.float32), rng.normal(size=(20, 2)).astype(np.float32)
    model = ResidualMLP(3, 2, hidden=4)
    before = [p.detach().clone() for p in model.parameters()]
    request_stop()
    with pytest.raises(KeyboardInterrupt):
        fit_encoder(model, X, Y, X, Y, max_epochs=5, device="cpu")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # no step was taken
    with pytest.raises(KeyboardInterrupt):
        compute_jne(model, X, device="cpu")
    clear_stop()
    check_stop()  # cleared: no raise
    assert compute_jne(model, X, device="cpu").jne.shape == (2,)


def test_signal_handler_asks_first_and_raises_on_the_second_signal():
    from jnecore.cancel import Terminated, stop_requested
    from jnecore.cli import _stop_then_raise

    handler = _stop_then_raise(Terminated)
    handler(15, None)  # first SIGTERM: only a request
    assert stop_requested()
    with pytest.raises(Terminated):  # the loops raise the signal's own exception type
        check_stop()
    with pytest.raises(Terminated):  # a second SIGTERM raises at once
        handler(15, None)

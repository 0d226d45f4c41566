"""The per-call checks remember what depends only on types and dtypes (so
a repeated call costs less), and never let that memory hide an error that
depends on a value: the device, or the type of one argument."""

import numpy as np
import pytest

from li_core import LIParameters, LIState, li_feed_forward_step, li_scan, validation

torch = pytest.importorskip("torch")


def test_a_remembered_input_kind_still_checks_each_arguments_device():
    x = torch.zeros(3, 4)
    li_scan(x, backend="torch")  # (torch float32 inputs are now remembered)
    state = LIState(torch.zeros(4, device="meta"), torch.zeros(4))
    with pytest.raises(ValueError, match=r"state\.v is on device meta but inputs is on device cpu"):
        li_scan(x, state, backend="torch")


def test_a_remembered_input_kind_is_per_dtype_and_type():
    x = np.zeros((3, 4), dtype=np.float32)
    li_scan(x)
    with pytest.raises(TypeError, match="inputs must have a floating dtype"):
        li_scan(x.astype(np.int32))
    with pytest.raises(TypeError, match="masked"):
        li_scan(np.ma.masked_array(x))
    with pytest.raises(TypeError, match=r"state\.i has dtype float64 but inputs has dtype float32"):
        li_scan(x, LIState(np.zeros(4, np.float32), np.zeros(4)))


def test_device_of_reads_what_array_api_compat_reads():
    import array_api_compat

    for x in (torch.zeros(2), torch.zeros(2, device="meta")):
        assert validation.device_of(x, "torch") == array_api_compat.device(x)


def test_float_parameters_are_checked_on_every_call():
    x = np.zeros((2, 3), dtype=np.float32)
    li_feed_forward_step(x, None)
    with pytest.raises(ValueError, match=r"p\.v_leak must be finite"):
        li_feed_forward_step(x, None, LIParameters(v_leak=float("nan")))

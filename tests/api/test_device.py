"""fairser.device: option checks, auto resolution, precision plans (CPU here)."""

import pytest
import torch

from fairser.device import (
    check_device_name,
    device_metadata,
    resolve_device,
    resolve_precision,
)
from fairser.errors import ConfigError


@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_valid_names(name):
    assert check_device_name(name) == name


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "CPU", "", "cuda:"])
def test_invalid_names_list_the_choices(name):
    with pytest.raises(ConfigError, match="auto | cpu"):
        check_device_name(name)


def test_auto_picks_what_is_there():
    dev = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else dev.type
    assert dev.type == expected
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="machine has CUDA")
def test_missing_cuda_is_a_clear_error():
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda:0")


def test_precision_plans_on_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu).autocast_dtype is None
    bf = resolve_precision("bf16", cpu)
    assert bf.autocast_dtype is torch.bfloat16 and not bf.use_grad_scaler
    with bf.autocast(cpu):
        out = torch.nn.Linear(4, 4)(torch.ones(2, 4))
    assert out.dtype == torch.bfloat16
    fp16 = resolve_precision("fp16", cpu)
    assert fp16.effective == "fp32" and fp16.requested == "fp16"
    assert device_metadata(cpu, fp16) == {"device": "cpu", "precision": "fp32",
                                          "precision_requested": "fp16"}
    with pytest.raises(ConfigError, match="fp32 | bf16"):
        resolve_precision("fp8", cpu)

"""The strong views' static path (what a GPU runs): the same bytes as the picked-samples path,
no host sync, one graph for torch.compile. Run on the CPU with the static path forced."""
import pytest
import torch

from benchmarks.recorder import OpRecorder
from pipelines.ops.policy import DRAWS, POLICIES, static_graph_breaks
from pipelines.ops.slot import apply_static

# (N, C, H, W): CIFAR, digits (grey 8 x 8), an odd non-square size.
SHAPES = [(128, 3, 32, 32), (64, 1, 8, 8), (32, 3, 20, 24)]


def batch(shape, seed: int) -> torch.Tensor:
    """Uniform noise for even seeds; four grey levels for odd ones (narrow ranges and sparse
    histograms for autocontrast and equalize, flat areas for the filters)."""
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(100 + seed))
    return (x // 64 * 20 + 60).to(torch.uint8) if seed % 2 else x


@pytest.mark.parametrize("name", sorted(POLICIES))
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_static_and_picked_paths_give_the_same_views(name, shape):
    view = POLICIES[name]
    for seed in range(4):
        x = batch(shape, seed)
        static = view(x, torch.Generator().manual_seed(seed), True)
        picked = view(x, torch.Generator().manual_seed(seed), False)
        assert torch.equal(static, picked), (name, shape, seed)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_static_view_makes_no_host_sync(name):
    view, x = POLICIES[name], batch(SHAPES[0], 0)
    view(x, torch.Generator().manual_seed(0), True)  # the per-device tables are built once, before
    draws = DRAWS[view](x, torch.Generator().manual_seed(1))
    with OpRecorder() as applying:
        apply_static(x, draws)
    with OpRecorder() as whole:
        view(x, torch.Generator().manual_seed(1), True)
    assert dict(applying.record.syncs) == {} and dict(whole.record.syncs) == {}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_static_apply_compiles_as_one_graph(name):
    torch._dynamo.reset()
    assert static_graph_breaks(POLICIES[name], batch(SHAPES[0], 0)[:16]) == 0

"""Cellpose's inference around our engines: same flows as cellpose's own run_net, masks from
cellpose's dynamics, AP as cellpose computes it."""

import numpy as np
import pytest
import torch

pytest.importorskip("cellpose")

from cellpose import core, dynamics  # noqa: E402

from efficientbioai.cellpose.network import ExportableCPnet, build_cpnet  # noqa: E402
from efficientbioai.cellpose.segment import masks_from_flows, predict_flows, prepare  # noqa: E402
from efficientbioai.cellpose.settings import CellposeSection  # noqa: E402
from efficientbioai.datasets.nuclei import synthetic_nuclei  # noqa: E402
from efficientbioai.engines.torch_engine import TorchModule  # noqa: E402
from efficientbioai.tasks.instance import average_precision  # noqa: E402


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return build_cpnet(nchan=2, nbase=(8, 16, 32, 64), diam_mean=17.0).eval()


class _PadStyle(torch.nn.Module):
    """Cellpose's own CPnet forward; style zero-padded to the 256 values run_net preallocates
    (cellpose's run_net only accepts nbase[-1] = 256; our adapter has no such limit)."""

    def __init__(self, net):
        super().__init__()
        self.net, self.nout, self.mkldnn = net, net.nout, False

    @property
    def device(self):
        return torch.device("cpu")

    def forward(self, x):
        y, style = self.net(x)[:2]
        return y, torch.nn.functional.pad(style, (0, 256 - style.shape[1]))


@pytest.mark.parametrize("rescale", [1.0, 0.8])
def test_engine_flows_equal_cellpose_run_net(net, rescale):
    """Same tiles, blending and resizing as cellpose's own run_net on the raw CPnet."""
    image, _ = synthetic_nuclei((300, 260), 3)
    settings = CellposeSection()
    x = prepare(image, settings, nchan=2)
    got = predict_flows(TorchModule(ExportableCPnet(net), "fp32", 2), x, settings, rescale, batch_size=4)
    yf, _ = core.run_net(
        _PadStyle(net), x[None], batch_size=4, tile_overlap=0.1, bsize=224, rsz=None if rescale == 1 else rescale
    )
    if rescale != 1.0:
        from cellpose import transforms

        yf = transforms.resize_image(yf, 300, 260)
    assert got.shape == (3, 300, 260)
    np.testing.assert_allclose(got, yf[0].transpose(2, 0, 1), atol=1e-4)


def test_masks_from_ideal_flows_recover_the_labels():
    """Flows and probabilities as a perfect network would output them → cellpose's dynamics → labels."""
    _, labels = synthetic_nuclei((160, 160), 4)
    flows = dynamics.masks_to_flows(labels)
    cellprob = np.where(labels > 0, 6.0, -6.0).astype(np.float32)
    masks = masks_from_flows(np.concatenate([5 * flows, cellprob[None]]), CellposeSection(), rescale=1.0)
    assert masks.shape == labels.shape and masks.dtype == np.uint32
    assert average_precision(labels, masks)["ap50"] > 0.9


def test_average_precision_cases():
    truth = np.zeros((20, 20), int)
    truth[1:6, 1:6], truth[10:15, 10:15] = 1, 2
    pred = np.zeros_like(truth)
    pred[1:6, 1:6] = 5  # exact
    pred[10:15, 11:16] = 7  # IoU 20/30 = 0.67
    pred[17:19, 17:19] = 9  # false positive
    ap = average_precision(truth, pred)
    assert ap["ap50"] == pytest.approx(2 / 3)  # TP 2, FP 1, FN 0
    assert ap["ap75"] == pytest.approx(1 / 4)  # TP 1, FP 2, FN 1
    assert ap["objects"] == 3
    empty = np.zeros((8, 8), int)
    assert average_precision(empty, empty)["ap50"] == 1.0


def test_warm_up_runs_the_dynamics_through_to_masks():
    """The numba JIT of cellpose's dynamics is paid once, before any variant is timed: the warm-up
    must take the whole mask path (two disks in, two masks out)."""
    from efficientbioai.config import load_config
    from efficientbioai.parsers.base import create_parser
    from efficientbioai.registry import TASKS

    config = load_config("configs/cellpose_nuclei.yaml")
    parser = create_parser(config)
    masks = TASKS.get(parser.task_name)(config, parser).warm_up()
    assert masks.max() == 2 and (masks == 1).sum() > 100 and (masks == 2).sum() > 100

"""Model files written by cellpose 3's own code load through the ``cellpose`` parser and give
cellpose's own masks (``CellposeModel(pretrained_model=file).eval``), compared by matching cells."""

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("cellpose")

from cellpose import models, resnet_torch  # noqa: E402

from efficientbioai.config import parse_config  # noqa: E402
from efficientbioai.datasets.nuclei import SEED_OFFSETS, synthetic_nuclei  # noqa: E402
from efficientbioai.engines.torch_engine import TorchModule  # noqa: E402
from efficientbioai.parsers.base import Sample  # noqa: E402
from efficientbioai.registry import PARSERS, TASKS  # noqa: E402
from efficientbioai.tasks.instance import average_precision  # noqa: E402

SMALL = Path(__file__).resolve().parents[2] / "efficientbioai" / "weights" / "cellpose_nuclei_small.pt"
#: ``CellposeModel``'s network: ``nbase`` with the input channels first, as cellpose writes it.
STANDARD = [2, 32, 64, 128, 256]


def _standard_net() -> torch.nn.Module:
    """Cellpose's own full-size CPnet that segments nuclei: the shipped reduced-width model in
    its leading channels (zeros elsewhere keep its function exactly), then every weight moved by
    10% of its tensor's spread, so all 6.6M weights are non-zero and shape the output."""
    if not SMALL.is_file():
        pytest.skip(f"shipped checkpoint missing: {SMALL}")
    small = torch.load(SMALL, weights_only=True)
    net = resnet_torch.CPnet(list(STANDARD), 3, sz=3, mkldnn=False, max_pool=True, diam_mean=17.0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, value in net.state_dict().items():
            inner = small[name]
            if name.startswith("diam") or value.ndim == 0:
                value.copy_(inner)
                continue
            value.fill_(1.0 if name.endswith("running_var") else 0.0)
            value[tuple(slice(0, n) for n in inner.shape)] = inner
            if not name.endswith(("running_mean", "running_var")):
                value.add_(0.1 * inner.std() * torch.randn(value.shape, generator=g))
    return net.eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    """The net written by ``CPnet.save_model``, as ``train_seg`` and the GUI write it (no suffix)."""
    path = tmp_path_factory.mktemp("cellpose") / "cellpose_standard"
    _standard_net().save_model(str(path))
    return path


@pytest.fixture(scope="module")
def image() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_nuclei((256, 256), SEED_OFFSETS["evaluation"])


def _parser(path: Path, **params):
    config = parse_config(
        {"model": {"parser": "cellpose", "checkpoint": str(path), "params": params}, "inference": {"tile": [224, 224]}}
    )
    return PARSERS.get("cellpose")(config)


def _our_masks(parser, image: np.ndarray) -> np.ndarray:
    """The toolbox's own path: parser → torch engine → instance task (cellpose's tiling and dynamics)."""
    task = TASKS.get(parser.task_name)(parser.config, parser)
    return task.predict(TorchModule(parser.load_model(), "fp32"), Sample("nuclei", parser.channels_first(image)))


def test_cellpose_writes_a_plain_state_dict(saved):
    """What cellpose 3.1's ``save_model`` writes: ``torch.save(state_dict)``, nothing else, with
    the two diameters as float tensors of shape (1,) among CPnet's own keys."""
    data = torch.load(saved, weights_only=True)
    net = _standard_net()
    assert list(data) == list(net.state_dict())
    assert all(isinstance(v, torch.Tensor) for v in data.values())
    assert data["diam_mean"].shape == data["diam_labels"].shape == (1,)
    assert data["diam_mean"].dtype == torch.float32
    assert float(data["diam_labels"]) == pytest.approx(float(torch.load(SMALL, weights_only=True)["diam_labels"]))


def test_masks_match_cellpose_eval(saved, image):
    """Same cells as cellpose's own eval (MKL-DNN on the CPU there, plain torch here): matched
    at IoU ≥ 0.9, never compared bit for bit."""
    image, truth = image
    cellpose = models.CellposeModel(gpu=False, pretrained_model=str(saved))
    want = cellpose.eval(image, channels=[0, 0])[0]
    assert want.max() >= 30 and average_precision(truth, want)["ap50"] >= 0.5  # it really segments

    parser = _parser(saved, nchan=2, nbase=STANDARD[1:])
    assert parser.rescale() == pytest.approx(cellpose.diam_mean / cellpose.diam_labels)  # ≠ 1: resized
    got = _our_masks(parser, image)
    agree = average_precision(want, got)
    assert agree["ap90"] >= 0.9, agree
    assert abs(int(got.max()) - int(want.max())) <= 2


def test_cellpose_nbase_convention_loads(saved):
    """``nbase: [2, 32, 64, 128, 256]`` as cellpose writes it (nchan first) is the same network."""
    net = _parser(saved, nbase=STANDARD).load_model().net
    assert net.nbase == STANDARD
    for name, value in torch.load(saved, weights_only=True).items():
        assert torch.equal(net.state_dict()[name], value), name


def test_file_without_diameters_loads_as_cellpose_does(tmp_path, saved):
    """Cellpose < 2.0 files have no diam_mean/diam_labels; cellpose 3 loads them (strict=False)
    with its constructor's diam_mean, and so does the parser with ``model.params.diam_mean``.
    (On the CPU, cellpose 3.1's ``load_model`` re-runs ``CPnet.__init__`` with diam_mean in the
    ``max_pool`` slot, so there it is always 30, the default; compared at that default.)"""
    path = tmp_path / "cellpose_v1"
    state = torch.load(saved, weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.startswith("diam")}, path)
    cellpose = models.CellposeModel(gpu=False, pretrained_model=str(path))
    parser = _parser(path)
    net = parser.load_model().net
    assert parser.rescale() == pytest.approx(cellpose.diam_mean / cellpose.diam_labels) == 1.0
    for name, value in cellpose.net.state_dict().items():
        assert torch.equal(net.state_dict()[name], value), name
    nuclei = _parser(path, diam_mean=17.0).load_model().net
    assert float(nuclei.diam_mean) == float(nuclei.diam_labels) == 17.0


def test_builtin_nuclei_file_rescales_as_cellpose(tmp_path, saved):
    """A local copy of cellpose's ``nucleitorch_0``: cellpose takes diam_mean = 17 whatever the
    file holds (it stores 30 here), and diam_labels from the file."""
    path = tmp_path / "nucleitorch_0"
    state = torch.load(saved, weights_only=True)
    torch.save({**state, "diam_mean": torch.tensor([30.0]), "diam_labels": torch.tensor([20.0])}, path)
    cellpose = models.CellposeModel(gpu=False, pretrained_model=str(path))
    assert cellpose.diam_mean == 17.0
    assert _parser(path).rescale() == pytest.approx(cellpose.diam_mean / cellpose.diam_labels)

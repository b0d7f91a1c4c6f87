"""Locks, safe --overwrite, and one ``error:`` line for every failure a user can cause."""

import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from efficientbioai.cli import main
from efficientbioai.locking import folder_lock
from tests.faults.helpers import experiment_copy
from tests.helpers import TINY, write_config

ROOT = Path(__file__).resolve().parents[2]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _config(tmp_path, tiny_checkpoint, **extra):
    data = {**TINY, "model": {**TINY["model"], "checkpoint": str(tiny_checkpoint)}}
    data["report"] = {**TINY["report"], "compare": ["torch:fp32", "openvino:int8"]}
    return write_config(tmp_path, {**data, **extra})


def test_a_second_compress_into_a_locked_folder_names_the_holder(tiny_checkpoint, tmp_path, capsys):
    config = _config(tmp_path, tiny_checkpoint)
    with folder_lock(tmp_path / "exp", "--exp_path"):  # a run in progress, in this process
        assert main(["compress", "--config", str(config), "--exp_path", str(tmp_path / "exp")]) == 2
    line = _one_error_line(capsys)
    assert "is being written by another run (pid " in line and f"pid {os.getpid()}" in line
    assert not (tmp_path / "exp").exists() and not (tmp_path / ".exp.partial").exists()


def test_a_lock_left_by_a_killed_run_does_not_block(tiny_experiment, tmp_path, capsys):
    exp = experiment_copy(tiny_experiment, tmp_path)
    out = tmp_path / "out"
    code = f"import sys, os; sys.path.insert(0, {str(ROOT)!r}); from efficientbioai.locking import folder_lock\n"
    code += f"with folder_lock({str(out)!r}, 'x'): os.kill(os.getpid(), 9)"
    subprocess.run([sys.executable, "-c", code], check=False)  # SIGKILL while holding the lock
    assert (tmp_path / ".out.lock").is_file()  # left by the killed holder, unlocked by the kernel
    image = tmp_path / "img.npy"
    np.save(image, np.ones((64, 64), np.float32))
    args = ["stream", "--config", str(exp / "deploy.yaml"), "--input", str(image), "--output_dir", str(out)]
    assert main(args) == 0


def test_overwrite_refuses_a_folder_that_is_not_an_experiment(tiny_checkpoint, tmp_path, capsys):
    folder = tmp_path / "mydata"
    folder.mkdir()
    (folder / "precious.tif").write_bytes(b"not ours")
    config = _config(tmp_path, tiny_checkpoint)
    assert main(["compress", "--config", str(config), "--exp_path", str(folder), "--overwrite"]) == 2
    assert "--overwrite refused" in _one_error_line(capsys) and (folder / "precious.tif").read_bytes() == b"not ours"


def test_overwrite_never_deletes_the_config_or_checkpoint_it_reads(tiny_checkpoint, tmp_path, capsys):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "manifest.json").write_text("{}")  # looks like an experiment
    ckpt = exp / "model.pt"
    ckpt.write_bytes(Path(tiny_checkpoint).read_bytes())
    data = {**TINY, "model": {**TINY["model"], "checkpoint": str(ckpt)}}
    config = write_config(exp, data)
    assert main(["compress", "--config", str(config), "--exp_path", str(exp), "--overwrite"]) == 2
    assert "which this run reads" in _one_error_line(capsys) and ckpt.is_file() and config.is_file()


def test_overwrite_replaces_an_experiment(tiny_checkpoint, tmp_path, capsys):
    config = _config(tmp_path, tiny_checkpoint)
    exp = tmp_path / "exp"
    assert main(["compress", "--config", str(config), "--exp_path", str(exp)]) == 0
    (exp / "old_note.txt").write_text("x")
    assert main(["compress", "--config", str(config), "--exp_path", str(exp), "--overwrite"]) == 0
    assert not (exp / "old_note.txt").exists() and (exp / "manifest.json").is_file()


def test_exp_path_under_a_file(tiny_checkpoint, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    config = _config(tmp_path, tiny_checkpoint)
    assert main(["compress", "--config", str(config), "--exp_path", str(tmp_path / "afile" / "exp")]) == 2
    assert "not a folder" in _one_error_line(capsys)


def test_read_only_output_folder(tiny_experiment, tmp_path, capsys, monkeypatch):
    """A read-only output folder: chmod for a normal user; as root (who writes anyway) the file
    system's EROFS is injected where the run first writes there."""
    import errno

    exp = experiment_copy(tiny_experiment, tmp_path)
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    if os.geteuid() == 0:
        real_open = os.open

        def read_only(path, *args, **kwargs):
            if str(path).startswith(str(out)) or str(path).startswith(str(tmp_path / ".ro")):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only)
    image = tmp_path / "img.npy"
    np.save(image, np.ones((64, 64), np.float32))
    args = ["stream", "--config", str(exp / "deploy.yaml"), "--input", str(image), "--output_dir", str(out)]
    assert main(args) == 2
    line = _one_error_line(capsys).lower()
    assert "read-only" in line or "permission" in line


def test_disk_full_is_one_error_line_and_leaves_no_final_file(tiny_experiment, tmp_path):
    """RLIMIT_FSIZE in a child process: its writes fail with EFBIG, as on a full disk."""
    exp = experiment_copy(tiny_experiment, tmp_path)
    image = tmp_path / "big.npy"
    np.save(image, np.ones((512, 512), np.float32))
    code = (
        f"import resource, sys; sys.path.insert(0, {str(ROOT)!r}); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000)); "
        "from efficientbioai.cli import main; "
        f"sys.exit(main(['stream', '--config', {str(exp / 'deploy.yaml')!r}, '--input', {str(image)!r}, "
        f"'--output_dir', {str(tmp_path / 'out')!r}]))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert run.returncode == 2 and len(errors) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "file-size limit" in errors[0] or "disk is full" in errors[0]
    assert not (tmp_path / "out" / "big.tif").exists()
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # this process is unaffected


def test_binary_config(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    assert main(["compress", "--config", str(path), "--exp_path", str(tmp_path / "x")]) == 2
    assert "not a text file" in _one_error_line(capsys)


def test_non_finite_weights_are_refused_naming_the_tensors(tiny_checkpoint, tmp_path, capsys):
    state = torch.load(tiny_checkpoint, weights_only=True)
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name][0] = float("nan")
    torch.save(state, tmp_path / "nan.pt")
    config = write_config(tmp_path, {**TINY, "model": {**TINY["model"], "checkpoint": str(tmp_path / "nan.pt")}})
    assert main(["compress", "--config", str(config), "--exp_path", str(tmp_path / "x")]) == 2
    line = _one_error_line(capsys)
    assert "hold NaN or Inf" in line and name in line


def test_missing_checkpoint_names_the_key(tmp_path, capsys):
    config = write_config(tmp_path, {**TINY, "model": {**TINY["model"], "checkpoint": "nowhere.pt"}})
    assert main(["compress", "--config", str(config), "--exp_path", str(tmp_path / "x")]) == 2
    line = _one_error_line(capsys)
    assert "model.checkpoint:" in line and str(tmp_path) in line


def test_pickled_checkpoint_says_why_and_how_to_convert(tmp_path, capsys):
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # a whole module: needs unpickling
    config = write_config(tmp_path, {**TINY, "model": {**TINY["model"], "checkpoint": str(tmp_path / "pickled.pt")}})
    assert main(["compress", "--config", str(config), "--exp_path", str(tmp_path / "x")]) == 2
    line = _one_error_line(capsys)
    assert "would run code from the file" in line and "weights_only=False).state_dict()" in line


def test_ctrl_c_during_compress_does_not_mention_resume(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    from efficientbioai.compression import build_experiment

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(build_experiment, "export_onnx", interrupt)
    config = _config(tmp_path, tiny_checkpoint)
    assert main(["compress", "--config", str(config), "--exp_path", str(tmp_path / "x")]) == 130
    err = capsys.readouterr().err
    assert "--resume" not in err and "run the command again" in err
    assert not (tmp_path / "x").exists() and not (tmp_path / ".x.partial").exists()


def test_an_engine_failing_mid_run_is_one_line(tiny_experiment, tmp_path, capfd, monkeypatch):
    """The failure surfaces once, in the main thread (no worker-thread traceback before it)."""
    from efficientbioai.engines.openvino_engine import OPVModule

    exp = experiment_copy(tiny_experiment, tmp_path)
    calls = {"n": 0}
    real = OPVModule.prepare

    def failing(self, x):  # called for every batch the worker submits to OpenVINO's async queue
        calls["n"] += 1
        if calls["n"] > 6:
            raise RuntimeError("device lost: an illegal memory access was encountered")
        return real(self, x)

    monkeypatch.setattr(OPVModule, "prepare", failing)
    image = tmp_path / "img.npy"
    np.save(image, np.ones((256, 256), np.float32))
    data = yaml.safe_load((exp / "deploy.yaml").read_text())
    data["runtime"] = {**data.get("runtime", {}), "block": [64, 64]}
    (exp / "deploy.yaml").write_text(yaml.safe_dump(data))
    args = ["stream", "--config", str(exp / "deploy.yaml"), "--input", str(image), "--variant", "openvino:int8"]
    assert main([*args, "--output_dir", str(tmp_path / "out")]) == 2
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in thread" not in err, err
    assert [line for line in err.splitlines() if line.startswith("error:")][0].count("illegal memory access") == 1

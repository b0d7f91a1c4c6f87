"""A full compress + inference run must not open a network connection.

Runs in a fresh interpreter (outside pytest, whose presence alone silences NNCF's telemetry)
with every socket entry point replaced by a guard that records the attempt and fails.
"""

import json
import subprocess
import sys

GUARD = """
import json, socket, sys
attempts = []
def _guard(name):
    def refuse(*args, **kwargs):
        attempts.append(f"{name}{args[1:2] if name.startswith('socket.') else args[:1]}")
        raise OSError("network disabled by test_offline")
    return refuse
socket.socket.connect = _guard("socket.connect")
socket.socket.connect_ex = _guard("socket.connect_ex")
socket.socket.sendto = _guard("socket.sendto")
socket.create_connection = _guard("create_connection")
socket.getaddrinfo = _guard("getaddrinfo")
if sys.argv[1] == "self-check":  # prove the guard sees a connection attempt
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    except OSError:
        pass
    print("RESULT " + json.dumps({"codes": [0, 0], "attempts": attempts}))
    sys.exit(0)
from efficientbioai.cli import main
codes = [main(["compress", "--config", sys.argv[1], "--exp_path", sys.argv[2]]),
         main(["infer", "--config", sys.argv[2] + "/deploy.yaml"])]
print("RESULT " + json.dumps({"codes": codes, "attempts": attempts}))
"""


def _run(*args):
    res = subprocess.run([sys.executable, "-c", GUARD, *args], capture_output=True, text=True, timeout=600)
    line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, res.stderr[-2000:]
    return json.loads(line.removeprefix("RESULT ")), res.stderr


def test_guard_sees_connections():
    result, _ = _run("self-check", "-")
    assert result["attempts"] == ["create_connection(('127.0.0.1', 9),)"]


def test_compress_and_inference_open_no_socket(tiny_config, tmp_path):
    cfg = tmp_path / "offline.yaml"
    text = tiny_config.read_text().replace("enabled: false", "enabled: true")  # codecarbon on too
    cfg.write_text(text)
    result, stderr = _run(str(cfg), str(tmp_path / "exp"))
    assert result["codes"] == [0, 0], stderr[-2000:]
    assert result["attempts"] == []

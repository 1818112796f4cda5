"""``cnnlab lab``: help, arguments, and a real server that answers and stops cleanly on Ctrl-C."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


from cnnlab.cli import main
from cnnlab.server.command import load_lab_model

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_the_command(capsys):
    assert main(["lab", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--no-browser" in out and "pretrained" in out


def test_bad_arguments_are_one_line_errors(capsys, tmp_path):
    assert main(["lab", str(tmp_path / "missing.npz"), "--no-browser"]) == 2
    assert "no model file" in capsys.readouterr().err
    assert main(["lab", "--port", "70000", "--no-browser"]) == 2
    assert "[1, 65535]" in capsys.readouterr().err


def test_a_port_in_use_is_a_one_line_error(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert main(["lab", "--port", str(s.getsockname()[1]), "--no-browser"]) == 2
    assert "is not free" in capsys.readouterr().err


def test_model_argument():
    assert load_lab_model(None)[1] == "simple_cnn (pretrained)"
    model, label = load_lab_model("lenet5")
    assert model.name == "lenet5" and "untrained" in label


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serves_on_localhost_and_stops_on_ctrl_c(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-m", "cnnlab", "lab", "--port", str(port), "--no-browser",
                             "--runs", str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path)
    try:
        body = None
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/train/options", timeout=2) as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None and b"lines_cnn" in body
        with socket.socket() as s:  # a rebound name is refused
            s.connect(("127.0.0.1", port))
            s.sendall(b"GET /api/model HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
            assert s.recv(100).startswith(b"HTTP/1.1 403")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "stopped" in out

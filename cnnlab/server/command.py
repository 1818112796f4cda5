"""The ``cnnlab lab`` command: start the learning lab in the browser. ``cnnlab.cli`` calls
:func:`add_commands` (it is listed in ``PLUGIN_MODULES``)."""
from __future__ import annotations

import argparse
from pathlib import Path

from cnnlab.layers import Conv2d
from cnnlab.utils.argtypes import positive_int

LAB_EPILOG = """\
Starts a local web app on 127.0.0.1, prints its URL and opens the browser. Pages: Draw
(draw a digit, see the probabilities and every feature map), Why this value? (click any unit:
its forward arithmetic and its gradient), Train (train a zoo model live) and Model (layers,
receptive fields, filters). Every number is computed by cnnlab; the page only draws.
Ctrl-C stops the server.

MODEL is a saved .npz or a zoo name; the default is the pretrained SimpleCNN shipped with
cnnlab (99.47% on MNIST). A zoo name other than simple_cnn starts with untrained, seeded weights.

examples:
  cnnlab lab                                  # the pretrained SimpleCNN
  cnnlab lab runs/simple_cnn/model.npz        # your own model
  cnnlab lab lenet5 --port 8765 --no-browser
"""


def add_commands(subparsers) -> None:
    """Add ``lab`` to the ``cnnlab`` sub-command parsers."""
    p = subparsers.add_parser("lab", help="the learning lab in the browser: draw, ask why, train, inspect",
                              description="Start the learning lab in the browser (a local web app).",
                              epilog=LAB_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", nargs="?", default=None,
                   help="a model file or a zoo name (default: the pretrained simple_cnn)")
    p.add_argument("--port", type=positive_int, default=8000, help="port on 127.0.0.1 (default: %(default)s)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--runs", type=Path, default=Path("runs/lab"),
                   help="folder for the Train page's runs (default: %(default)s)")
    p.set_defaults(func=cmd_lab)


def load_lab_model(spec: str | None):
    """``(model, label)``: the pretrained SimpleCNN for None or ``simple_cnn``, a file, or a zoo model."""
    from cnnlab.models.io import load_model
    from cnnlab.models.zoo import MODELS, get_model, simple_cnn

    if spec is None or (spec == "simple_cnn" and not Path(spec).exists()):
        return simple_cnn(pretrained=True), "simple_cnn (pretrained)"
    if spec in MODELS and not Path(spec).exists():
        return get_model(spec), f"{spec} (untrained, seed 0)"
    if not Path(spec).is_file():
        raise FileNotFoundError(f"no model file at {spec} (and not a zoo model: {', '.join(MODELS)})")
    return load_model(spec), Path(spec).name


def _check_port_free(host: str, port: int) -> None:
    """A one-line error before anything starts when the port is taken (uvicorn would log and exit)."""
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no obstacle
        try:
            s.bind((host, port))
        except OSError as err:
            raise ValueError(f"port {port} on {host} is not free ({err.strerror}); choose another with --port") from None


def _warm_up(model) -> None:
    """One Draw and one explanation before the URL is printed: the compiled kernels load now,
    not on the first stroke."""
    import numpy as np

    from cnnlab.server import inference

    pixels = np.zeros(inference.image_shape(model), np.uint8)
    pixels[pixels.shape[0] // 4:-(pixels.shape[0] // 4), pixels.shape[1] // 2] = 255  # a "1"
    inference.draw_result(model, pixels)
    conv = next((k for k, layer in enumerate(model.layers) if isinstance(layer, Conv2d)), None)
    if conv is not None:
        inference.explain_unit(model, pixels, conv)


def cmd_lab(args) -> int:
    import uvicorn

    from cnnlab.server.app import create_app
    from cnnlab.server.security import allowed_hosts_for

    if args.port > 65535:
        raise ValueError(f"--port must be in [1, 65535]; received {args.port}")
    host = "127.0.0.1"
    _check_port_free(host, args.port)
    model, label = load_lab_model(args.model)
    app = create_app(model, label, runs_dir=args.runs, allowed_hosts=allowed_hosts_for(host, args.port))
    _warm_up(model)
    url = f"http://{host}:{args.port}/"
    print(f"cnnlab lab: {label} at {url}  (Ctrl-C to stop)", flush=True)
    if not args.no_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    try:
        uvicorn.run(app, host=host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled once the server is down
        pass
    job = app.state.job
    if job.running:  # a run in progress stops at its next batch with a checkpoint, as Stop does
        job.stop()
        job.join(60)
    print("cnnlab lab: stopped", flush=True)
    return 0

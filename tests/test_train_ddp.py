"""`torchrun --nproc_per_node 2 -m pigeon train` on CPU (gloo): same weights as one process with the same
config."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from trainkit import TINY_OVERRIDES, make_dataset

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = [*TINY_OVERRIDES, "pretrain.max_steps=2", "head.epochs=2"]


@pytest.mark.slow
def test_torchrun_two_processes_match_a_single_process(tmp_path):
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    if torchrun is None:
        pytest.skip("torchrun is not installed next to this python")
    data = make_dataset(tmp_path / "ds", n=40, size=40)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    ddp, single = tmp_path / "ddp", tmp_path / "single"
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "pigeon", "train", "--data", str(data),
           "--out", str(ddp), "--no-eval", *OVERRIDES]
    # own session, so a hung rendezvous can be killed with all its workers
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("torchrun timed out:\n" + out[-3000:])
    assert proc.returncode == 0, out[-5000:]
    manifest = json.loads((ddp / "manifest.json").read_text())
    assert manifest["training"]["world_size"] == 2

    from pigeon.cli import main

    assert main(["train", "--data", str(data), "--out", str(single), "--no-eval", *OVERRIDES]) == 0
    a, b = load_file(str(ddp / "model.safetensors")), load_file(str(single / "model.safetensors"))
    assert a.keys() == b.keys()
    # the contrastive batch is gathered across ranks, head batches are split: the same optimisation up to fp
    # noise
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=2e-4, rtol=1e-3, msg=k)

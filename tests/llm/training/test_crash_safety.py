"""kill -9 in the middle of a checkpoint save: the run resumes from the previous checkpoint."""

import subprocess
import sys
import time

import pytest
from pretrain_helpers import make_data

from ember.llm.inference.checkpoint import load_model
from ember.llm.training.checkpoints import latest_checkpoint
from ember.llm.training.pretrain import pretrain
from ember.llm.training.trainer import TrainConfig

CONFIG = {
    "steps": 4,
    "seq_len": 16,
    "micro_batch": 2,
    "batch_tokens": 32,
    "checkpoint_every": 2,
    "dtype": "fp32",
}

# The child saves step 2, then blocks inside the step-4 save (files written, not yet renamed).
CHILD = """
import sys, time
from pathlib import Path
import torch
torch.set_num_threads(1)
from ember.llm.training.pretrain import pretrain
from ember.llm.training.trainer import TrainConfig

def hook(partial):
    if partial.name.endswith("step_0000004-" + str(__import__("os").getpid())):
        Path(sys.argv[3]).write_text("saving")
        time.sleep(600)

pretrain(Path(sys.argv[1]), Path(sys.argv[2]), TrainConfig(**CONFIG), depth=1, show=False, save_hook=hook)
"""


@pytest.mark.slow  # a training subprocess plus a resume: ~1 min on the shared 2-core box
def test_kill_during_save_leaves_the_previous_checkpoint(tmp_path, tiny_tokenizer, documents):
    data = make_data(tmp_path / "data", tiny_tokenizer, documents)
    run, marker = tmp_path / "run", tmp_path / "saving"
    code = f"CONFIG = {CONFIG!r}\n{CHILD}"
    child = subprocess.Popen([sys.executable, "-c", code, str(data), str(run), str(marker)])
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, "the training process ended before its second save"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    child.kill()  # SIGKILL
    child.wait()
    assert any(run.joinpath("checkpoints").glob(".partial-step_0000004-*"))

    previous = latest_checkpoint(run)
    assert previous.name == "step_0000002"
    assert not any(run.joinpath("checkpoints").glob(".partial-*"))  # the half-written save is cleared
    load_model(previous)
    summary = pretrain(data, run, TrainConfig(**CONFIG), depth=1, resume=True, show=False)
    assert summary["steps"] == 4
    assert [r["step"] for r in summary["records"]] == [1, 2, 3, 4]  # 1-2 kept from before, 3-4 resumed

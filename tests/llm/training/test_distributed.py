"""Two gloo processes on CPU, with DDP or with FSDP, make the same update as one process accumulating twice
as many micro-batches; a checkpoint of the sharded run resumes in one process."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from pretrain_helpers import make_data, make_trainer

from ember.llm.inference.config import ModelConfig
from ember.llm.inference.evaluate import token_byte_lengths
from ember.llm.tokenizer import Tokenizer
from ember.llm.training.distributed import Distributed
from ember.llm.training.pretrain import validation_bpb
from ember.llm.training.shards import open_split

STEPS, SIZES = 2, {"micro_batch": 2, "batch_tokens": 128, "seq_len": 16}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, data, run_dir, tokenizer_file, config, fsdp, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    dist = Distributed.from_environment("cpu")
    tokenizer = Tokenizer.load(tokenizer_file)
    model_config = ModelConfig.from_dict(config)
    trainer = make_trainer(data, run_dir, tokenizer, model_config, dist=dist, fsdp=fsdp, **SIZES)
    assert trainer.accumulation == 2 and trainer.sharded == fsdp
    losses = [trainer.train_step() for _ in range(STEPS)]
    bpb = _val_bpb(trainer, data, tokenizer, dist)
    trainer.save()  # under FSDP, every process gathers
    whole = trainer.whole_model()
    if rank == 0:
        torch.save({"losses": losses, "state": whole.state_dict(), "bpb": bpb}, out)
    dist.close()


def _val_bpb(trainer, data, tokenizer, dist) -> float:
    # 3 windows of 2 x 16 tokens: one process scores two, the other one (under FSDP it runs an empty pass)
    lengths = token_byte_lengths(tokenizer)
    return validation_bpb(trainer.model, open_split(data, "val"), lengths, trainer.config, dist, 80)


@pytest.mark.slow  # two spawned processes importing torch: ~100 s on the shared 2-core box
@pytest.mark.parametrize("fsdp", [False, True], ids=["ddp", "fsdp"])
def test_two_gloo_processes_equal_one_with_double_accumulation(
    tmp_path, tiny_tokenizer, tiny_config, documents, fsdp
):
    data = make_data(tmp_path / "data", tiny_tokenizer, documents)
    tiny_tokenizer.save(tmp_path / "tokenizer.json")
    out, run = tmp_path / "two.pt", tmp_path / "two"
    args = (2, _free_port(), data, run, tmp_path / "tokenizer.json", tiny_config.to_dict(), fsdp, out)
    mp.spawn(_worker, args=args, nprocs=2, join=True)

    single = make_trainer(data, tmp_path / "one", tiny_tokenizer, tiny_config, **SIZES)
    assert single.accumulation == 4
    losses = [single.train_step() for _ in range(STEPS)]
    two = torch.load(out)
    assert max(abs(a - b) for a, b in zip(losses, two["losses"], strict=True)) <= 1e-5
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(two["state"][name], value, rtol=0, atol=1e-5, msg=name)
    assert abs(two["bpb"] - _val_bpb(single, data, tiny_tokenizer, Distributed.single("cpu"))) <= 1e-5

    # the two processes' checkpoint (whole weights; under FSDP optimizer states by name) goes on in one
    resumed = make_trainer(data, run, tiny_tokenizer, tiny_config, **{**SIZES, "micro_batch": 4})
    assert resumed.resume() and resumed.step == STEPS
    assert abs(resumed.train_step() - single.train_step()) <= 1e-5
    for name, value in single.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=0, atol=1e-5, msg=name)

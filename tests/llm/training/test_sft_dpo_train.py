"""SFT and DPO on the training loop (tiny models): SFT drives the loss down, DPO drives reward accuracy above
0.9, both resume exactly from adapter-only checkpoints, and a checkpoint of other adapters or another base
model is refused."""

import pytest
import torch
import torch.nn.functional as F

from ember.llm.inference.checkpoint import WEIGHTS_FILE
from ember.llm.inference.model import Transformer
from ember.llm.tokenizer import Tokenizer
from ember.llm.training.checkpoints import TRAINABLE_FILE, CheckpointError, latest_checkpoint
from ember.llm.training.dpo import dpo_loss
from ember.llm.training.dpo_data import Pair
from ember.llm.training.dpo_train import pair_logps, reference_logps, train_dpo
from ember.llm.training.lora import LoraSpec, attach_lora
from ember.llm.training.optimizers import build_optimizers
from ember.llm.training.sft import row_batches, sft_loss, train_sft
from ember.llm.training.sft_data import Example, pack, render_conversation
from ember.llm.training.trainer import next_token_loss
from ember.llm.training.tune import finetune_config

RANK_4 = LoraSpec(rank=4)
WORDS = "red green blue cat dog bird one two three yes no maybe".split()


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train([" ".join(WORDS)] * 4, vocab_size=300)


@pytest.fixture
def tiny_model(tokenizer, make_tiny_config):
    def make(seed: int = 0, lora: LoraSpec | None = RANK_4) -> Transformer:
        """With ``lora`` None, every weight trains."""
        torch.manual_seed(seed)
        model = Transformer(make_tiny_config(tokenizer.vocab_size, max_seq_len=128, tie_embeddings=True))
        return attach_lora(model, lora) if lora else model

    return make


def conversations(tokenizer) -> list[Example]:
    examples = []
    for i, word in enumerate(WORDS[:8]):
        chat = [
            {"role": "user", "content": f"say {word}"},
            {"role": "assistant", "content": f"{word} {word} yes"},
        ]
        examples.append(Example(*render_conversation(tokenizer, chat), line=i + 1))
    return examples


def config(steps: int, batch_size: int, lr: float, checkpoint_every: int = 50):
    return finetune_config(steps, batch_size, lr, seq_len=64, checkpoint_every=checkpoint_every)


def crash_at(step: int):
    def on_step(record: dict) -> None:
        if record["step"] == step:
            raise KeyboardInterrupt

    return on_step


def test_sft_batches_score_exactly_the_masked_tokens(tokenizer, tiny_model):
    rows = pack(conversations(tokenizer), 24, tokenizer.pad_id)
    batches = row_batches(rows, 3, seed=0)
    picked = [rows[i] for i in batches.indices(0, 3)]
    inputs, targets = batches.next_batch()
    model = tiny_model()
    loss, metrics = sft_loss(model, (inputs, targets))
    ids, mask = torch.tensor([r.ids for r in picked]), torch.tensor([r.mask for r in picked])
    by_mask = F.cross_entropy(  # the loss over mask-1 tokens, each predicted from the token before
        model(ids)[:, :-1].flatten(0, 1), ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100).flatten()
    )
    torch.testing.assert_close(loss, by_mask, rtol=1e-6, atol=0)
    assert metrics["supervised_tokens"] == int(mask[:, 1:].sum()) > 0
    # the same as pretraining's loss over all logits, which ignores the -1 targets
    torch.testing.assert_close(next_token_loss(model, (inputs, targets)), loss, rtol=1e-6, atol=0)


def test_sft_with_lora_drives_the_loss_down(tokenizer, tiny_model, tmp_path):
    history = train_sft(
        tiny_model(lora=LoraSpec(rank=8, alpha=16)),
        tokenizer,
        conversations(tokenizer),
        config(steps=40, batch_size=4, lr=1e-2),
        tmp_path,
    )
    first, last = history[0]["loss"], sum(h["loss"] for h in history[-5:]) / 5
    assert last < 0.5 * first, (first, last)
    assert all(h["supervised_tokens"] > 0 for h in history)


def test_sft_resumes_exactly_from_an_adapter_only_checkpoint(tokenizer, tiny_model, tmp_path):
    settings, data, lora = (
        config(6, 2, 5e-3, checkpoint_every=3),
        conversations(tokenizer),
        LoraSpec(4, dropout=0.1),
    )
    whole = train_sft(tiny_model(lora=lora), tokenizer, data, settings, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train_sft(tiny_model(lora=lora), tokenizer, data, settings, tmp_path / "b", on_step=crash_at(4))
    saved = latest_checkpoint(tmp_path / "b")
    assert saved.name == "step_0000003" and not (saved / WEIGHTS_FILE).exists()
    assert (saved / TRAINABLE_FILE).stat().st_size < 50_000  # the adapters, not the frozen base
    torch.manual_seed(99)  # the resumed process starts from other RNG states
    resumed = train_sft(tiny_model(lora=lora), tokenizer, data, settings, tmp_path / "b")
    assert [h["step"] for h in resumed] == [1, 2, 3, 4, 5, 6]
    for ours, theirs in zip(resumed, whole, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-6)


def test_a_checkpoint_of_other_adapters_or_another_base_is_refused(tokenizer, tiny_model, tmp_path):
    data = conversations(tokenizer)
    train_sft(tiny_model(), tokenizer, data, config(2, 2, 1e-3, checkpoint_every=1), tmp_path)
    with pytest.raises(CheckpointError, match="saved with other trainable parameters"):
        train_sft(tiny_model(lora=LoraSpec(rank=8)), tokenizer, data, config(4, 2, 1e-3), tmp_path)
    with pytest.raises(CheckpointError, match="saved on other frozen weights"):
        train_sft(tiny_model(seed=1), tokenizer, data, config(4, 2, 1e-3), tmp_path)


def test_a_full_fine_tune_resumes_from_a_whole_model_checkpoint(tokenizer, tiny_model, tmp_path):
    settings, data = config(4, 2, 1e-3, checkpoint_every=2), conversations(tokenizer)
    whole = train_sft(tiny_model(lora=None), tokenizer, data, settings, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train_sft(tiny_model(lora=None), tokenizer, data, settings, tmp_path / "b", on_step=crash_at(3))
    assert (latest_checkpoint(tmp_path / "b") / WEIGHTS_FILE).is_file()
    with pytest.raises(CheckpointError, match="holds a whole model, but this run trains only some"):
        train_sft(tiny_model(), tokenizer, data, settings, tmp_path / "b")
    resumed = train_sft(tiny_model(lora=None), tokenizer, data, settings, tmp_path / "b")
    assert [h["loss"] for h in resumed] == pytest.approx([h["loss"] for h in whole], abs=1e-6)


def test_adapter_runs_optimize_exactly_the_trainable_parameters_with_adamw(tiny_model):
    model = tiny_model(lora=LoraSpec(rank=4, token_ids=(5,)))
    (optimizer,) = build_optimizers(model, "adamw")
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert optimized == {id(p) for p in trainable.values()}
    assert "tok_emb.rows" in trainable and all(n == "tok_emb.rows" or ".lora_" in n for n in trainable)


def preference_pairs(tokenizer) -> list[Pair]:
    pairs = []
    for i, word in enumerate(WORDS[:8]):
        prompt = tokenizer.encode(f"say {word}")
        chosen, rejected = tokenizer.encode(f" {word} yes"), tokenizer.encode(" no maybe")
        pairs.append(
            Pair(
                Example(prompt + chosen, [0] * len(prompt) + [1] * len(chosen)),
                Example(prompt + rejected, [0] * len(prompt) + [1] * len(rejected)),
                line=i + 1,
            )
        )
    return pairs


def reward_metrics(model, pairs, reference) -> dict[str, float]:
    with torch.no_grad():
        chosen, rejected = pair_logps(model.eval(), pairs, torch.device("cpu"))
    return dpo_loss(chosen, rejected, reference[:, 0], reference[:, 1], beta=0.1).metrics


def test_dpo_raises_reward_accuracy_above_0_9(tokenizer, tiny_model, tmp_path):
    model, pairs = tiny_model(lora=LoraSpec(rank=8, alpha=16)), preference_pairs(tokenizer)
    reference = reference_logps(model, pairs, torch.device("cpu"))
    assert abs(reward_metrics(model, pairs, reference)["rewards/margins"]) < 1e-4  # no preference yet
    history = train_dpo(model, tokenizer, pairs, config(steps=30, batch_size=4, lr=1e-2), tmp_path, 0.1)
    assert reward_metrics(model, pairs, reference)["rewards/accuracies"] > 0.9
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[-1]["rewards/margins"] > history[0]["rewards/margins"]
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies"} <= set(history[-1])
    assert torch.equal(torch.load(tmp_path / "reference_logps.pt"), reference)


def test_dpo_resumes_exactly(tokenizer, tiny_model, tmp_path):
    settings, pairs = config(6, 2, 5e-3, checkpoint_every=2), preference_pairs(tokenizer)
    whole = train_dpo(tiny_model(), tokenizer, pairs, settings, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        train_dpo(tiny_model(), tokenizer, pairs, settings, tmp_path / "b", on_step=crash_at(3))
    resumed = train_dpo(tiny_model(), tokenizer, pairs, settings, tmp_path / "b")
    assert [h["step"] for h in resumed] == [1, 2, 3, 4, 5, 6]
    for ours, theirs in zip(resumed, whole, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-6)
        assert ours["rewards/margins"] == pytest.approx(theirs["rewards/margins"], abs=1e-6)


def test_a_bf16_dpo_run_takes_its_reference_in_bf16_and_learns(tokenizer, tiny_model, tmp_path):
    pairs, cpu = preference_pairs(tokenizer), torch.device("cpu")
    settings = finetune_config(30, 4, 1e-2, seq_len=64, dtype="bf16")
    spec = LoraSpec(rank=8, alpha=16)
    history = train_dpo(tiny_model(lora=spec), tokenizer, pairs, settings, tmp_path, 0.1)
    saved = torch.load(tmp_path / "reference_logps.pt")
    fresh = tiny_model(lora=spec)  # the same starting weights
    assert torch.equal(saved, reference_logps(fresh, pairs, cpu, dtype="bf16"))
    assert not torch.equal(saved, reference_logps(fresh, pairs, cpu))  # not the fp32 log-probs
    assert history[-1]["rewards/accuracies"] > 0.9 and history[-1]["loss"] < history[0]["loss"]

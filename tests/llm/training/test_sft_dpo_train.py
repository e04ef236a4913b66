"""SFT drives the loss down, DPO drives reward accuracy above 0.9, and both resume exactly (tiny models)."""

import pytest
import torch

from ember.llm.inference.config import ModelConfig
from ember.llm.inference.model import Transformer
from ember.llm.tokenizer import Tokenizer
from ember.llm.training.dpo import dpo_loss
from ember.llm.training.dpo_data import Pair
from ember.llm.training.dpo_train import pair_logps, reference_logps, train_dpo
from ember.llm.training.finetune import FineTuneOptions
from ember.llm.training.lora import LoraSpec, attach_lora
from ember.llm.training.sft import train_sft
from ember.llm.training.sft_data import Example, render_conversation

WORDS = "red green blue cat dog bird one two three yes no maybe".split()


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train([" ".join(WORDS)] * 4, vocab_size=300)


def tiny_model(tokenizer, seed=0) -> Transformer:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_dim=64,
        max_seq_len=128,
    )
    return Transformer(config)


def conversations(tokenizer) -> list[Example]:
    examples = []
    for i, word in enumerate(WORDS[:8]):
        chat = [
            {"role": "user", "content": f"say {word}"},
            {"role": "assistant", "content": f"{word} {word} yes"},
        ]
        examples.append(Example(*render_conversation(tokenizer, chat), line=i + 1))
    return examples


def test_sft_with_lora_drives_the_loss_down(tokenizer):
    model = attach_lora(tiny_model(tokenizer), LoraSpec(rank=8, alpha=16))
    options = FineTuneOptions(steps=40, batch_size=4, lr=1e-2, warmup=2)
    history = train_sft(model, conversations(tokenizer), 64, tokenizer.pad_id, options)
    first, last = history[0]["loss"], sum(h["loss"] for h in history[-5:]) / 5
    assert last < 0.5 * first, (first, last)


def test_sft_resumes_exactly(tokenizer, tmp_path):
    options = FineTuneOptions(steps=6, batch_size=2, lr=5e-3, warmup=2, save_every=3)
    data = conversations(tokenizer)
    whole = train_sft(attach_lora(tiny_model(tokenizer), LoraSpec(rank=4, dropout=0.1)), data, 64, 0, options)

    def crash_after_step_4(step, metrics):
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model = attach_lora(tiny_model(tokenizer), LoraSpec(rank=4, dropout=0.1))
        train_sft(model, data, 64, 0, options, tmp_path, on_step=crash_after_step_4)
    model = attach_lora(tiny_model(tokenizer), LoraSpec(rank=4, dropout=0.1))
    resumed = train_sft(model, data, 64, 0, options, tmp_path)
    assert [h["step"] for h in resumed] == [1, 2, 3, 4, 5, 6]
    for ours, theirs in zip(resumed, whole, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-6)


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


def test_dpo_raises_reward_accuracy_above_0_9(tokenizer, tmp_path):
    model = attach_lora(tiny_model(tokenizer), LoraSpec(rank=8, alpha=16))
    pairs = preference_pairs(tokenizer)
    reference = reference_logps(model, pairs, torch.device("cpu"))
    assert abs(reward_metrics(model, pairs, reference)["rewards/margins"]) < 1e-4  # no preference yet
    history = train_dpo(
        model, pairs, FineTuneOptions(steps=30, batch_size=4, lr=1e-2, warmup=2), 0.1, tmp_path
    )
    assert reward_metrics(model, pairs, reference)["rewards/accuracies"] > 0.9
    assert history[-1]["loss"] < history[0]["loss"]
    assert torch.equal(torch.load(tmp_path / "reference_logps.pt"), reference)


def test_dpo_resumes_exactly(tokenizer, tmp_path):
    options = FineTuneOptions(steps=6, batch_size=2, lr=5e-3, warmup=2, save_every=2)
    pairs = preference_pairs(tokenizer)
    whole = train_dpo(
        attach_lora(tiny_model(tokenizer), LoraSpec(rank=4)), pairs, options, 0.1, tmp_path / "a"
    )

    def crash_at_step_3(step, metrics):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model = attach_lora(tiny_model(tokenizer), LoraSpec(rank=4))
        train_dpo(model, pairs, options, 0.1, tmp_path / "b", on_step=crash_at_step_3)
    resumed = train_dpo(
        attach_lora(tiny_model(tokenizer), LoraSpec(rank=4)), pairs, options, 0.1, tmp_path / "b"
    )
    for ours, theirs in zip(resumed, whole, strict=True):
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-6)
        assert ours["rewards/margins"] == pytest.approx(theirs["rewards/margins"], abs=1e-6)

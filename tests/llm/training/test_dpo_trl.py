"""Ember's DPO loss and metrics against TRL's DPOTrainer on the same tiny Llama models and batch."""

import pytest
import torch

from ember.llm.imports.importers import load_hf
from ember.llm.inference.checkpoint import model_from_state
from ember.llm.training.dpo import completion_logps, dpo_loss

pytest.importorskip("trl")

PAIRS = [
    {"prompt": "the cat", "chosen": " sat", "rejected": " ran away"},
    {"prompt": "a dog", "chosen": " barks", "rejected": " is"},
    {"prompt": "we", "chosen": " go home", "rejected": " stay"},
]


def _character_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(["<pad>", "<eos>", *"abcdefghijklmnopqrstuvwxyz "])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>")


def _as_ember(hf_model, directory):
    hf_model.save_pretrained(directory)
    return model_from_state(*load_hf(directory)).eval()


def test_loss_and_reward_metrics_equal_trl(tmp_path):
    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import DPOConfig, DPOTrainer

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=29,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
        pad_token_id=0,
        eos_token_id=1,
    )
    policy, reference = LlamaForCausalLM(config), LlamaForCausalLM(config)
    args = DPOConfig(
        output_dir=str(tmp_path / "trl"),
        beta=0.3,
        per_device_train_batch_size=len(PAIRS),
        report_to=[],
        use_cpu=True,
        max_steps=1,
    )
    trainer = DPOTrainer(
        model=policy,
        ref_model=reference,
        args=args,
        train_dataset=Dataset.from_list(PAIRS),
        processing_class=_character_tokenizer(),
    )
    batch = next(iter(trainer.get_train_dataloader()))
    ids, mask = batch["input_ids"], batch["completion_mask"]  # rows: every chosen, then every rejected
    with torch.no_grad():
        policy_logps = completion_logps(_as_ember(policy, tmp_path / "p")(ids), ids, mask)
        reference_logps = completion_logps(_as_ember(reference, tmp_path / "r")(ids), ids, mask)
    ours = dpo_loss(*policy_logps.chunk(2), *reference_logps.chunk(2), beta=0.3)

    # TRL gets Ember's reference log-probs as precomputed ones and computes the policy's itself. (Once inside
    # DPOTrainer, the HF reference's own logits drift ~1e-3 from its saved weights' ones, cause not found.)
    trainer.precompute_ref_logps = True
    batch["ref_chosen_logps"], batch["ref_rejected_logps"] = reference_logps.chunk(2)
    trl_loss = trainer.compute_loss(policy, batch).item()
    trl_metrics = {name: values[-1] for name, values in trainer._metrics["train"].items()}

    assert ours.loss.item() == pytest.approx(trl_loss, abs=1e-5)
    for name in (
        "rewards/chosen",
        "rewards/rejected",
        "rewards/margins",
        "rewards/accuracies",
        "logps/chosen",
        "logps/rejected",
    ):
        assert ours.metrics[name] == pytest.approx(trl_metrics[name], abs=1e-5), name

"""Imported vocabularies must give exactly HF's ids, and model chat templates transformers' rendering."""

import os

import pytest
from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from ember.llm.tokenizer import Tokenizer
from ember.llm.tokenizer.files import load_tokenizer_file
from ember.llm.tokenizer.gguf_import import load_gguf_tokenizer
from ember.llm.tokenizer.hf_import import load_hf_tokenizer
from tests.llm.test_tokenizer_data import multilingual_text

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHATS = [
    [{"role": "user", "content": "Hi there!"}],
    [
        {"role": "system", "content": "You answer in German."},
        {"role": "user", "content": "How are you? <|im_end|>"},
        {"role": "assistant", "content": "Mir geht's gut, danke! 😀"},
        {"role": "user", "content": "Und 12345?"},
    ],
    [
        {"role": "user", "content": "First"},
        {"role": "assistant", "content": "One"},
        {"role": "user", "content": "Second"},
        {"role": "assistant", "content": "Two\n\n  spaced"},
    ],
]


@pytest.fixture(scope="module")
def hf_smollm2(smollm2_gguf):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smollm2_gguf.parent), gguf_file=smollm2_gguf.name)


@pytest.fixture(scope="module")
def smollm2_json(hf_smollm2, tmp_path_factory):
    folder = tmp_path_factory.mktemp("smollm2_hf")
    hf_smollm2.save_pretrained(folder)
    return folder / "tokenizer.json"


@pytest.fixture(scope="module")
def gguf_tokenizer(smollm2_gguf) -> Tokenizer:
    return load_gguf_tokenizer(smollm2_gguf)


def hf_ids(hf: HFTokenizer, text: str) -> list[int]:
    return hf.encode(text, add_special_tokens=False).ids


def test_gguf_and_tokenizer_json_give_hf_ids_on_multilingual_text(gguf_tokenizer, smollm2_json):
    hf = HFTokenizer.from_file(str(smollm2_json))
    text = multilingual_text(600, seed=7) + "\U00040000 byte the vocab lacks: \x04"
    expected = hf_ids(hf, text)
    assert gguf_tokenizer.encode(text) == expected
    assert load_hf_tokenizer(smollm2_json).encode(text) == expected
    assert gguf_tokenizer.decode(expected) == hf.decode(expected, skip_special_tokens=False)


def test_any_tokenizer_file_opens_as_its_kind(gguf_tokenizer, smollm2_gguf, smollm2_json, tmp_path):
    gguf_tokenizer.save(tmp_path / "ember.json")
    text = multilingual_text(200, seed=5)
    expected = gguf_tokenizer.encode(text)
    for path in (smollm2_gguf, smollm2_json, tmp_path / "ember.json"):
        assert load_tokenizer_file(path).encode(text) == expected, path
    with pytest.raises(FileNotFoundError):
        load_tokenizer_file(tmp_path / "missing.json")


def test_imported_reference_equals_fast_path(gguf_tokenizer):
    text = multilingual_text(20, seed=1)
    assert gguf_tokenizer.reference_encode(text) == gguf_tokenizer.encode(text)


def test_gguf_special_tokens_and_ids(gguf_tokenizer):
    assert gguf_tokenizer.vocab_size == 49152
    assert (gguf_tokenizer.bos_id, gguf_tokenizer.eos_id, gguf_tokenizer.pad_id) == (1, 2, 2)
    assert gguf_tokenizer.eos_ids == {0, 2}  # <|endoftext|> and <|im_end|>
    assert gguf_tokenizer.encode("<|im_start|>", allowed_special="all") == [1]


@pytest.mark.parametrize("chat", CHATS)
@pytest.mark.parametrize("generation", [True, False])
def test_chat_template_matches_transformers(gguf_tokenizer, hf_smollm2, chat, generation):
    if "<|im_end|>" in str(chat):  # transformers matches special-token text in messages; we never do
        expected = hf_smollm2.apply_chat_template(
            chat, add_generation_prompt=generation, tokenize=True, sanitize_control_tokens=True
        )
    else:
        expected = hf_smollm2.apply_chat_template(chat, add_generation_prompt=generation, tokenize=True)
    if isinstance(expected, dict) or hasattr(expected, "input_ids"):
        expected = expected["input_ids"]
    ids, mask = gguf_tokenizer.render_chat(chat, add_generation_prompt=generation)
    assert ids == list(expected)
    trained = [i for i, m in zip(ids, mask, strict=True) if m]
    answers = "".join(f"{m['content']}<|im_end|>\n" for m in chat if m["role"] == "assistant")
    assert gguf_tokenizer.decode(trained) == answers


def train_hf_byte_level(pre_tokenizer) -> HFTokenizer:
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizer
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1500,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator([multilingual_text(300, seed=s) for s in range(3)], trainer)
    return hf


@pytest.mark.parametrize(
    "pre_tokenizer",
    [
        pre_tokenizers.ByteLevel(add_prefix_space=False),  # GPT-2
        pre_tokenizers.Sequence(  # SmolLM2's original tokenizer.json
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        ),
    ],
    ids=["gpt2", "digits+bytelevel"],
)
def test_hf_byte_level_families_give_hf_ids(tmp_path, pre_tokenizer):
    hf = train_hf_byte_level(pre_tokenizer)
    hf.save(str(tmp_path / "tokenizer.json"))
    ours = load_hf_tokenizer(tmp_path / "tokenizer.json")
    text = multilingual_text(300, seed=11) + " 1 22  333   4444\n 5x6 "
    assert ours.encode(text) == hf_ids(hf, text)
    assert ours.special_tokens == {"<|endoftext|>": 0}


def test_unsupported_pre_tokenizer_is_named(tmp_path):
    hf = train_hf_byte_level(pre_tokenizers.Whitespace())
    hf.save(str(tmp_path / "tokenizer.json"))
    with pytest.raises(ValueError, match="unsupported pre-tokenizer.*Whitespace"):
        load_hf_tokenizer(tmp_path / "tokenizer.json")

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.llm.tokenizer import Tokenizer, bytes_per_token
from tests.llm.test_tokenizer_data import multilingual_text


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer.train([multilingual_text(200)], 800)


@settings(max_examples=200, deadline=None)
@given(text=st.text())
def test_random_unicode_round_trips_and_reference_equals_fast_path(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.reference_encode(text) == ids
    assert tok.count_tokens(text) == len(ids)


def test_reference_equals_fast_path_on_multilingual_text_with_specials(tok):
    text = multilingual_text(40, seed=3) + "<|eos|>tail<|user|>"
    assert tok.reference_encode(text) == tok.encode(text)
    assert tok.reference_encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")


def test_special_token_text_is_plain_unless_allowed(tok):
    eos = tok.special_tokens["<|eos|>"]
    assert eos not in tok.encode("a <|eos|> b")
    assert tok.encode("a<|eos|>", allowed_special={"<|eos|>"})[-1] == eos
    assert tok.decode(tok.encode("a <|eos|> b")) == "a <|eos|> b"
    with pytest.raises(ValueError, match="unknown special tokens"):
        tok.encode("x", allowed_special={"<|nope|>"})


def test_stream_decoder_never_emits_half_a_character(tok):
    text = "Grüße 😀👍🏽 你好"
    pieces = []
    decoder = tok.stream_decoder()
    for token_id in tok.encode(text):
        piece = decoder.push(token_id)
        assert "\ufffd" not in piece
        pieces.append(piece)
    pieces.append(decoder.flush())
    assert "".join(pieces) == text
    # a lone first byte of a 4-byte character waits, then becomes U+FFFD at the end of the stream
    decoder = tok.stream_decoder()
    assert decoder.push(0xF0) == "" and decoder.flush() == "\ufffd"


def test_decode_rejects_ids_outside_the_vocabulary(tok):
    with pytest.raises(ValueError, match="token id 5000 is outside the vocabulary"):
        tok.decode([1, 5000])


def test_native_chat_masks_assistant_tokens_only(tok):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather? <|eos|>"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [{"function": {"name": "w", "arguments": "{}"}}],
        },
        {"role": "tool", "content": "sunny", "tool_call_id": "1"},
        {"role": "assistant", "content": "Sunny."},
    ]
    tools = [{"type": "function", "function": {"name": "w", "parameters": {}}}]
    ids, mask = tok.render_chat(messages, tools=tools, add_generation_prompt=False)
    special = tok.special_tokens
    assert len(ids) == len(mask) and ids[0] == special["<|bos|>"]
    trained = tok.decode([i for i, m in zip(ids, mask, strict=True) if m])
    assert (
        trained == 'Checking.<|tool_call|>{"name": "w", "arguments": {}}<|tool_call_end|><|eos|>Sunny.<|eos|>'
    )
    # the user's "<|eos|>" stays text: eos ids appear only where the template puts them
    assert ids.count(special["<|eos|>"]) == 5  # system, tools, user, two assistant turns
    generation_ids, _ = tok.render_chat(messages[:2])
    assert generation_ids[-1] == special["<|assistant|>"]


def test_native_chat_rejects_unknown_roles(tok):
    with pytest.raises(ValueError, match="message 0 needs a role"):
        tok.render_chat([{"role": "robot", "content": "hi"}])


def test_bytes_per_token():
    assert bytes_per_token(1000, 250) == 4.0
    with pytest.raises(ValueError):
        bytes_per_token(1000, 0)

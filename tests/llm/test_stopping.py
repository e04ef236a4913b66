"""Incremental text with stop strings, fed real SmolLM2 token ids one at a time."""

from ember.llm.inference.stopping import SequenceText

TEXT = "Café ☕ au lait 🥐 — naïve über-fast 日本語. END of text"


def feed(tokenizer, text: str, stops: list[str]) -> tuple[list[str], SequenceText]:
    sequence = SequenceText(tokenizer.stream_decoder(), stops, set())
    deltas = [sequence.push(token) for token in tokenizer.encode(text)]
    deltas.append(sequence.finish("length"))
    return deltas, sequence


def test_multibyte_text_streams_whole_characters_and_reassembles(smollm2_tokenizer):
    deltas, sequence = feed(smollm2_tokenizer, TEXT, [])
    assert "".join(deltas) == TEXT == sequence.text
    assert not any("\ufffd" in d for d in deltas)
    assert sequence.finish_reason == "length"


def test_stop_string_is_cut_and_its_prefix_never_leaks(smollm2_tokenizer):
    deltas, sequence = feed(smollm2_tokenizer, TEXT, ["END"])
    assert "".join(deltas) == TEXT[: TEXT.index("END")]
    assert sequence.finish_reason == "stop"
    assert not any("E" in d for d in deltas)  # "E" could start "END", so it is held back, then cut


def test_held_back_prefix_is_released_when_the_stop_string_does_not_follow(smollm2_tokenizer):
    deltas, sequence = feed(smollm2_tokenizer, TEXT, ["ENDING"])
    assert "".join(deltas) == TEXT
    assert sequence.finish_reason == "length"


def test_stop_token_flushes_and_stops(smollm2_tokenizer):
    ids = smollm2_tokenizer.encode("Hello there")
    sequence = SequenceText(smollm2_tokenizer.stream_decoder(), [], {ids[-1]})
    out = "".join(sequence.push(t) for t in ids) + sequence.push(ids[0])
    assert out == smollm2_tokenizer.decode(ids[:-1])
    assert sequence.finish_reason == "stop"

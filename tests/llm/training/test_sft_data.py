"""The loss mask covers exactly the assistant tokens (SmolLM2's template and Ember's native one, with tool
calls and results); bad SFT and DPO rows are errors that name the file and line."""

import json

import pytest

from ember.llm.tokenizer import Tokenizer
from ember.llm.training.dpo_data import load_pairs
from ember.llm.training.jsonl import DataError
from ember.llm.training.sft_data import Example, load_sft, pack, render_conversation

CALL = {
    "id": "c1",
    "type": "function",
    "function": {"name": "calculator", "arguments": '{"expression": "6*7"}'},
}
TOOLS = [{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}]
CHAT = [
    {"role": "system", "content": "Answer from the passages."},
    {"role": "user", "content": "What is six times seven?"},
    {"role": "assistant", "content": "Let me compute.", "tool_calls": [CALL]},
    {"role": "tool", "content": "42"},
    {"role": "assistant", "content": "It is 42 [1]."},
]


def masked_spans(tokenizer, ids, mask) -> list[str]:
    """The text of each run of supervised tokens."""
    spans, run = [], []
    for token, flag in zip(ids + [None], mask + [0], strict=True):
        if flag:
            run.append(token)
        elif run:
            spans.append(tokenizer.decode(run))
            run = []
    return spans


def test_smollm2_template_trains_on_assistant_text_calls_and_end_markers_only(smollm2_tokenizer):
    ids, mask = render_conversation(smollm2_tokenizer, CHAT, TOOLS)
    call = '<tool_call>{"name": "calculator", "arguments": {"expression": "6*7"}}</tool_call>'
    assert masked_spans(smollm2_tokenizer, ids, mask) == [
        f"Let me compute.{call}<|im_end|>\n",
        "It is 42 [1].<|im_end|>\n",
    ]
    unsupervised = smollm2_tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
    assert "<tool_response>42</tool_response>" in unsupervised and "six times seven" in unsupervised
    assert "calculator" in unsupervised  # the tool schema, in the system turn


@pytest.fixture(scope="module")
def native_tokenizer() -> Tokenizer:
    return Tokenizer.train(
        ["Answer from the passages. What is six times seven? It is 42."] * 3, vocab_size=300
    )


def test_native_template_trains_on_assistant_text_calls_and_end_markers_only(native_tokenizer):
    ids, mask = render_conversation(native_tokenizer, CHAT, TOOLS)
    call = '<|tool_call|>{"name": "calculator", "arguments": {"expression": "6*7"}}<|tool_call_end|>'
    assert masked_spans(native_tokenizer, ids, mask) == [
        f"Let me compute.{call}<|eos|>",
        "It is 42 [1].<|eos|>",
    ]
    unsupervised = native_tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
    assert "<|tool_result|>42<|tool_result_end|>" in unsupervised


def supervised_text(tokenizer, example: Example) -> str:
    return tokenizer.decode([t for t, m in zip(example.ids, example.mask, strict=True) if m])


def write_jsonl(path, rows) -> str:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(path)


def test_sft_rows_load_and_bad_rows_name_file_and_line(tmp_path, native_tokenizer):
    good = {"messages": CHAT[1:], "tools": TOOLS}
    path = write_jsonl(tmp_path / "ok.jsonl", [good, "", good])
    examples = load_sft(path, native_tokenizer, max_len=256)
    assert [e.line for e in examples] == [1, 3] and sum(examples[0].mask) > 0
    cases = {
        '{"messages": [}': "not valid JSON",
        json.dumps({"messages": CHAT[:2]}): "no assistant turn",
        json.dumps(
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]}
        ): "",
        json.dumps({"messages": [{"role": "robot"}]}): "needs a role",
        json.dumps({"text": ""}): "'text' must be a non-empty string",
        json.dumps({"text": 7}): "'text' must be a non-empty string",
        json.dumps({"prompt": "hi"}): "needs 'messages' \\(a conversation\\) or 'text'",
    }
    for row, problem in cases.items():
        bad = write_jsonl(tmp_path / "bad.jsonl", [good, row])
        with pytest.raises(DataError, match=f"bad.jsonl:2: .*{problem}"):
            load_sft(bad, native_tokenizer, max_len=256)
    with pytest.raises(DataError, match="ok.jsonl:1: no supervised token in the first 8 tokens"):
        load_sft(path, native_tokenizer, max_len=8)


def test_plain_text_rows_train_on_every_token_after_the_first(tmp_path, native_tokenizer):
    text = "Plain replayed text keeps the model's general distribution."
    path = write_jsonl(tmp_path / "mixed.jsonl", [{"text": text}, {"messages": CHAT[1:], "tools": TOOLS}])
    plain, chat = load_sft(path, native_tokenizer, max_len=256)
    assert native_tokenizer.decode(plain.ids).endswith(text) and plain.mask[0] == 0
    assert all(plain.mask[1:]) and len(plain.ids) >= len(native_tokenizer.encode(text))
    assert 0 < sum(chat.mask) < len(chat.mask)  # a conversation still trains on its assistant turns only


def test_dpo_pairs_plain_and_conversational_and_bad_pairs(tmp_path, native_tokenizer):
    plain = {"prompt": "six times seven is", "chosen": " 42", "rejected": " 41"}
    chat = {
        "prompt": CHAT[:2],
        "chosen": [{"role": "assistant", "content": "It is 42."}],
        "rejected": [{"role": "assistant", "content": "It is 41."}],
        "ref_chosen_logps": -3.5,
        "ref_rejected_logps": -4.0,
    }
    pairs = load_pairs(write_jsonl(tmp_path / "p.jsonl", [plain, chat]), native_tokenizer, max_len=128)
    assert supervised_text(native_tokenizer, pairs[0].chosen) == " 42<|eos|>"
    assert supervised_text(native_tokenizer, pairs[1].rejected) == "It is 41.<|eos|>"
    assert (pairs[1].ref_chosen, pairs[1].ref_rejected) == (-3.5, -4.0)
    for row, problem in {
        json.dumps({**plain, "rejected": plain["chosen"]}): "identical",
        json.dumps({"prompt": "x", "chosen": "y"}): "missing",
        "not json": "not valid JSON",
        json.dumps({**chat, "chosen": [{"role": "user", "content": "x"}]}): "assistant messages only",
    }.items():
        bad = write_jsonl(tmp_path / "bad.jsonl", [plain, plain, row])
        with pytest.raises(DataError, match=f"bad.jsonl:3: .*{problem}"):
            load_pairs(bad, native_tokenizer, max_len=128)


def test_packing_keeps_every_example_whole_within_rows():
    examples = [Example([i] * n, [1] * n, i) for i, n in enumerate([5, 3, 4, 2, 6, 1])]
    rows = pack(examples, seq_len=8, pad_id=99)
    assert all(len(r.ids) == 8 == len(r.mask) for r in rows)
    assert len(rows) == 3  # 21 tokens in rows of 8
    assert sorted(sum(r.mask) for r in rows) == [5, 8, 8]  # first fit by decreasing length: 6+2, 5+3, 4+1
    for example in examples:  # each example sits whole, in one row
        holding = [r for r in rows if example.ids[0] in r.ids]
        assert len(holding) == 1 and holding[0].ids.count(example.ids[0]) == len(example.ids)

"""Stand-in for ember.llm.tokenizer while it is being built: HF's tokenizer behind the contract."""

from __future__ import annotations

from pathlib import Path


class _StreamDecoder:
    def __init__(self, tok) -> None:
        self.tok, self.ids, self.sent = tok, [], 0

    def push(self, token_id: int) -> str:
        self.ids.append(token_id)
        text = self.tok.decode(self.ids)
        if text.endswith("\ufffd"):
            return ""
        delta, self.sent = text[self.sent :], len(text)
        return delta

    def flush(self) -> str:
        text = self.tok.decode(self.ids)
        delta, self.sent = text[self.sent :], len(text)
        return delta


class HFTokenizer:
    def __init__(self, gguf: Path) -> None:
        from transformers import AutoTokenizer

        self.hf = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        self.eos_ids = {self.hf.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        self.vocab_size = len(self.hf)

    def encode(self, text: str, allowed_special=()) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False)

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(ids)

    def stream_decoder(self) -> _StreamDecoder:
        return _StreamDecoder(self.hf)

    def render_chat(self, messages, tools=None, add_generation_prompt=True):
        text = self.hf.apply_chat_template(
            messages, add_generation_prompt=add_generation_prompt, tokenize=False
        )
        ids = self.encode(text)
        return ids, [0] * len(ids)

"""The Tokenizer: byte-level BPE with special tokens and a chat template, encoded by tiktoken's core."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import tiktoken

from ember.llm.tokenizer.chat import BOS, DEFAULT_SPECIAL_TOKENS, EOS, PAD, render_jinja, render_native
from ember.llm.tokenizer.patterns import GPT4_PATTERN
from ember.llm.tokenizer.reference import reference_encode
from ember.llm.tokenizer.stream import StreamDecoder
from ember.llm.tokenizer.train import count_pretokens, train_merges

FORMAT = "ember-bpe"
# Tokens that end an assistant turn in common open models, besides the declared eos token.
DROPPED = -1  # stands for a byte the vocabulary lacks; never returned
END_OF_TURN_NAMES = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "</s>")


class Tokenizer:
    """Byte-level BPE. ``vocab`` maps ids to bytes for ordinary tokens; ``merge_order`` lists the ids of
    multi-byte tokens that BPE may build, highest priority first (for tokenizers trained here it is simply
    256, 257, ...; imported vocabularies may order merges differently from their ids).
    """

    def __init__(
        self,
        pattern: str,
        vocab: dict[int, bytes],
        merge_order: list[int],
        special_tokens: dict[str, int],
        chat_template: str | None = None,
        bos_token: str | None = None,
        eos_token: str | None = None,
        pad_token: str | None = None,
        end_tokens: Iterable[str] = (),
        name: str = "ember",
    ) -> None:
        self.pattern = pattern
        self.vocab = dict(vocab)
        self.merge_order = list(merge_order)
        self.special_tokens = dict(special_tokens)
        self.chat_template = chat_template
        self.bos_token, self.eos_token, self.pad_token = bos_token, eos_token, pad_token
        self.end_tokens = [t for t in end_tokens if t in self.special_tokens]
        self.name = name
        for role, token in (("bos", bos_token), ("eos", eos_token), ("pad", pad_token)):
            if token is not None and token not in self.special_tokens:
                raise ValueError(f"{role} token {token!r} is not among the special tokens")
        clash = set(self.vocab) & set(self.special_tokens.values())
        if clash:
            raise ValueError(f"special token ids {sorted(clash)[:5]} are also ordinary token ids")
        self._build()

    def _build(self) -> None:
        singles = {token: i for i, token in self.vocab.items() if len(token) == 1}
        self.vocab_size = max([*self.vocab, *self.special_tokens.values()]) + 1
        table = [b""] * self.vocab_size
        for i, token in self.vocab.items():
            table[i] = token
        for text, i in self.special_tokens.items():
            table[i] = text.encode("utf-8")
        self._table = table
        # tiktoken returns ranks (merge priorities). When ids follow merge order, ids serve as ranks;
        # otherwise tiktoken gets dense ranks that we map back to ids. A byte missing from the vocabulary
        # (imported vocabularies lack bytes never seen in training) is dropped from the output, as HF does.
        merged = list(dict.fromkeys(self.merge_order))
        increasing = all(a < b for a, b in zip(merged, merged[1:], strict=False))
        distinct = len({self.vocab[i] for i in merged} | set(singles)) == len(merged) + len(singles)
        if not distinct:
            raise ValueError("two BPE-reachable tokens have the same bytes")
        self._rank_to_id: list[int] | None = None
        if increasing and len(singles) == 256:
            mergeable = {self.vocab[i]: i for i in [*singles.values(), *merged]}
            specials = self.special_tokens
        else:
            ordered = [singles.get(bytes([b]), DROPPED) for b in range(256)] + merged
            mergeable = {bytes([b]): b for b in range(256)}
            mergeable.update({self.vocab[i]: 256 + k for k, i in enumerate(merged)})
            specials = {text: len(ordered) + k for k, text in enumerate(self.special_tokens)}
            self._rank_to_id = ordered + list(self.special_tokens.values())
        self._drops_bytes = len(singles) < 256
        self._mergeable, self._special_ranks = mergeable, specials
        self._encoding = tiktoken.Encoding(
            self.name, pat_str=self.pattern, mergeable_ranks=mergeable, special_tokens=specials
        )

    def _to_ids(self, ranks: list[int]) -> list[int]:
        if self._rank_to_id is None:
            return ranks
        ids = [self._rank_to_id[r] for r in ranks]
        if self._drops_bytes and DROPPED in ids:
            ids = [i for i in ids if i != DROPPED]
        return ids

    # --- construction -------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        pattern: str = GPT4_PATTERN,
        special_tokens: list[str] | None = None,
        workers: int = 1,
        progress: bool = False,
    ) -> Tokenizer:
        """Train on ``texts``; ``vocab_size`` counts the 256 bytes, the merges and the special tokens."""
        specials = DEFAULT_SPECIAL_TOKENS if special_tokens is None else list(special_tokens)
        num_merges = vocab_size - 256 - len(specials)
        if num_merges < 0:
            raise ValueError(f"vocab_size {vocab_size} is below 256 bytes + {len(specials)} special tokens")
        counts = count_pretokens(texts, pattern, workers=workers)
        merged = train_merges(counts, num_merges, progress=progress)
        vocab = {b: bytes([b]) for b in range(256)}
        vocab.update({256 + k: token for k, token in enumerate(merged)})
        first_special = len(vocab)
        special_ids = {text: first_special + k for k, text in enumerate(specials)}
        has = set(specials).issuperset
        return cls(
            pattern,
            vocab,
            list(range(256, first_special)),
            special_ids,
            bos_token=BOS if has([BOS]) else None,
            eos_token=EOS if has([EOS]) else None,
            pad_token=PAD if has([PAD]) else None,
        )

    @classmethod
    def load(cls, path: str | Path) -> Tokenizer:
        """Read Ember's JSON format (see ``save``)."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"{path} is not an Ember tokenizer file (format {data.get('format')!r})")
        vocab = {i: base64.b64decode(t) for i, t in enumerate(data["tokens"]) if t is not None}
        return cls(
            data["pattern"],
            vocab,
            data["merge_order"],
            data["special_tokens"],
            chat_template=data.get("chat_template"),
            bos_token=data.get("bos_token"),
            eos_token=data.get("eos_token"),
            pad_token=data.get("pad_token"),
            end_tokens=data.get("end_tokens", ()),
            name=data.get("name", "ember"),
        )

    def save(self, path: str | Path) -> None:
        """Write JSON: the pattern, each token's bytes (base64, by id), the merge priority order, the
        special tokens and the chat template."""
        tokens = [None] * self.vocab_size
        for i, token in self.vocab.items():
            tokens[i] = base64.b64encode(token).decode("ascii")
        data = {
            "format": FORMAT,
            "version": 1,
            "name": self.name,
            "pattern": self.pattern,
            "special_tokens": self.special_tokens,
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            "pad_token": self.pad_token,
            "end_tokens": self.end_tokens,
            "chat_template": self.chat_template,
            "merge_order": self.merge_order,
            "tokens": tokens,
        }
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    # --- encoding -------------------------------------------------------------------------------------

    def _allowed(self, allowed_special: set[str] | str) -> set[str]:
        if allowed_special == "all":
            return set(self.special_tokens)
        if isinstance(allowed_special, str):
            raise ValueError(
                f"allowed_special must be a set of special tokens or 'all', got {allowed_special!r}"
            )
        unknown = set(allowed_special) - set(self.special_tokens)
        if unknown:
            raise ValueError(f"allowed_special names unknown special tokens: {sorted(unknown)}")
        return set(allowed_special)

    def encode(self, text: str, allowed_special: set[str] | str = ()) -> list[int]:
        """Token ids of ``text``; special-token text is ordinary text unless listed (or "all")."""
        allowed = self._allowed(allowed_special)
        if allowed:
            ids = self._encoding.encode(text, allowed_special=allowed, disallowed_special=())
        else:
            ids = self._encoding.encode_ordinary(text)
        return self._to_ids(ids)

    def reference_encode(self, text: str, allowed_special: set[str] | str = ()) -> list[int]:
        """The plain-Python specification of ``encode`` (slow; for tests)."""
        allowed = {s: self._special_ranks[s] for s in self._allowed(allowed_special)}
        return self._to_ids(reference_encode(text, self.pattern, self._mergeable, allowed))

    def count_tokens(self, text: str) -> int:
        """Number of tokens in ``text`` (special-token text counts as plain text)."""
        if self._drops_bytes:
            return len(self.encode(text))
        return len(self._encoding.encode_ordinary(text))

    def decode(self, ids: list[int]) -> str:
        """Text of ``ids``; bytes that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def decode_bytes(self, ids: list[int]) -> bytes:
        try:
            return b"".join([self._table[i] for i in ids])
        except (IndexError, TypeError):
            bad = next(i for i in ids if not isinstance(i, int) or not 0 <= i < self.vocab_size)
            raise ValueError(f"token id {bad!r} is outside the vocabulary (size {self.vocab_size})") from None

    def token_bytes(self, token_id: int) -> bytes:
        return self._table[token_id]

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder(self._table)

    # --- special tokens and chat ------------------------------------------------------------------

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self.special_tokens[token]

    @property
    def bos_id(self) -> int | None:
        return self._id(self.bos_token)

    @property
    def eos_id(self) -> int | None:
        return self._id(self.eos_token)

    @property
    def pad_id(self) -> int | None:
        return self._id(self.pad_token)

    @property
    def eos_ids(self) -> set[int]:
        """Every id that ends an assistant turn."""
        ends = {
            self.special_tokens[t] for t in (*self.end_tokens, *END_OF_TURN_NAMES) if t in self.special_tokens
        }
        if self.eos_id is not None:
            ends.add(self.eos_id)
        return ends

    def template_variables(self) -> dict[str, Any]:
        """The special-token names a jinja chat template may use, as transformers passes them."""
        names = {"bos_token": self.bos_token, "eos_token": self.eos_token, "pad_token": self.pad_token}
        return {key: value for key, value in names.items() if value is not None}

    def render_chat(
        self, messages: list[dict], tools: list[dict] | None = None, add_generation_prompt: bool = True
    ) -> tuple[list[int], list[int]]:
        """(ids, loss_mask) of a chat; the mask is 1 on assistant tokens only. Uses the model's own jinja
        template when it has one, else Ember's (see ``chat.render_native``)."""
        if self.chat_template:
            return render_jinja(self, messages, tools, add_generation_prompt)
        return render_native(self, messages, tools, add_generation_prompt)

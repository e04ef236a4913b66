"""Per-sequence detokenization with stop tokens and stop strings, safe for streaming."""

from __future__ import annotations


class SequenceText:
    """Accumulates one sequence's text; emits only text that no stop string can still claim."""

    def __init__(self, decoder, stop_strings: list[str], stop_token_ids: set[int]) -> None:
        self.decoder = decoder  # a tokenizer StreamDecoder: push(id) -> complete UTF-8 text
        self.stop_strings = [s for s in stop_strings if s]
        self.stop_token_ids = stop_token_ids
        self.text = ""
        self.emitted = 0
        self.finish_reason: str | None = None

    def push(self, token_id: int) -> str:
        """Feed one generated token; return the newly releasable text."""
        if self.finish_reason is not None:
            return ""
        if token_id in self.stop_token_ids:
            self.finish_reason = "stop"
            self.text += self.decoder.flush()
            return self._release(len(self.text))
        self.text += self.decoder.push(token_id)
        for stop in self.stop_strings:
            # Search only where a new match can start: the unreleased tail plus a stop's length.
            at = self.text.find(stop, max(0, self.emitted - len(stop)))
            if at != -1:
                self.finish_reason = "stop"
                self.text = self.text[:at]
                return self._release(len(self.text))
        return self._release(len(self.text) - self._held_back())

    def finish(self, reason: str) -> str:
        """End the sequence (e.g. at max tokens) and release everything still held."""
        if self.finish_reason is not None:
            return ""
        self.finish_reason = reason
        self.text += self.decoder.flush()
        return self._release(len(self.text))

    def _held_back(self) -> int:
        """Length of the longest text suffix that is a proper prefix of some stop string."""
        longest = 0
        for stop in self.stop_strings:
            for n in range(min(len(stop) - 1, len(self.text)), longest, -1):
                if self.text.endswith(stop[:n]):
                    longest = n
                    break
        return longest

    def _release(self, end: int) -> str:
        end = max(end, self.emitted)
        delta, self.emitted = self.text[self.emitted : end], end
        return delta

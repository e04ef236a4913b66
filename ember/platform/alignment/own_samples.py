"""DPO rejections from the model's own samples.

A preference pair teaches most when its rejected side is something the model really writes. Each pair's
prompt is sampled from the starting model (or, on-policy, the SFT model); a sample that fails a check
(no citation, the wrong passage cited, the gold number missing, a repetition loop, an answer where the
passages hold none) becomes the rejected side. A sample that passes every check keeps the synthetic
failure the pair was built with.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ember.agents.repetition import loop_start
from ember.llm.inference.sampling import SamplingParams
from ember.platform.alignment.synth import IDK

_CITATION = re.compile(r"\[(\d+)\]")


def failed_checks(text: str, expect: dict, finished: bool = True) -> list[str]:
    """The checks ``text`` fails for a pair whose chosen side meets ``expect``
    (``{"abstain": True}``, or ``{"citation": n, "number": "42" | None}``). A sample cut by its token
    limit (``finished`` False) might still have written its number and citation: only what it already
    got wrong counts against it (a wrong citation, a loop, an answer where it should abstain)."""
    if expect.get("abstain"):
        return [] if IDK.rstrip(".") in text else ["answered_without_support"]
    failures = []
    cited = {int(n) for n in _CITATION.findall(text)}
    if not cited:
        failures += ["uncited"] if finished else []
    elif expect["citation"] not in cited:
        failures.append("wrong_citation")
    number = expect.get("number")
    if number and finished and re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", text) is None:
        failures.append("wrong_number")
    if loop_start(text) is not None:
        failures.append("loop")
    return failures


def reject_own_samples(
    chat,
    pairs: list[dict],
    max_tokens: int = 96,  # a quoted sentence of 45 words and its citation
    temperature: float = 0.8,
    batch_size: int = 4,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Replace each pair's rejected side with ``chat``'s own failing sample, in place; counts per outcome."""
    counts = {"own_sample": 0, "sample_passed": 0, "empty_sample": 0}
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        prompts = [chat.prompt(pair["prompt"], None) for pair in chunk]
        sampling = SamplingParams(
            max_tokens=max_tokens, temperature=temperature, top_p=0.95, seed=seed + start
        )
        generations = chat.engine.generate(prompts, sampling)
        for pair, generation in zip(chunk, generations, strict=True):
            text = generation.text.strip()
            finished = generation.finish_reason != "length"
            failures = failed_checks(text, pair["expect"], finished) if text else []
            if not text:
                counts["empty_sample"] += 1
            elif failures:
                pair["rejected"] = [{"role": "assistant", "content": text}]
                pair["rejected_by"] = failures
                counts["own_sample"] += 1
            else:
                counts["sample_passed"] += 1
        if progress is not None:
            progress(min(start + batch_size, len(pairs)), len(pairs))
    return counts

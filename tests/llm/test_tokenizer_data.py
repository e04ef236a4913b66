"""Multilingual test text generated in the tests themselves (no external data)."""

from __future__ import annotations

import random

PIECES = [
    "The quick brown fox jumps over the lazy dog.",
    "Don't panic; it's what we'd've done, isn't it?",
    "Grüße aus München: die Straße ist äußerst schön, Übergrößen gibt's nicht.",
    "我们今天去北京吃烤鸭，你觉得怎么样？",
    "東京タワーは高いです。",
    "Привет, мир! Как дела?",
    "مرحبا بالعالم",
    "😀👍🏽🎉 family: 👨‍👩‍👧‍👦 flags: 🇩🇪🇨🇳",
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "for (int i = 0; i < 10; ++i) { sum += a[i] * 3.14159; }",
    "   leading and trailing spaces   ",
    "tabs\t\tand\nnewlines\n\n\n\r\nCRLF",
    "numbers 1234567890 12 345,678.90 2024-01-31",
    "       \n        \n",
    "\u00a0non-breaking\u2003em space\u3000ideographic",
    "control \x01\x7f\x1b[0m chars",
    '<html><body class="x">&amp; &lt;tag&gt;</body></html>',
    "ALL CAPS SHOUTING and MiXeD CaSe",
]


def multilingual_text(paragraphs: int = 400, seed: int = 0) -> str:
    rng = random.Random(seed)
    parts = []
    for _ in range(paragraphs):
        picked = rng.sample(PIECES, 4)
        glue = rng.choice([" ", "\n", "  ", "\n\n", "\t", ""])
        parts.append(glue.join(picked))
    return "\n".join(parts)

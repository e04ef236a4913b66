"""`ember align rag` data: grounded, cited targets in the RAG prompt's format, abstentions without the gold
document, agent traces through the real tools, failing DPO variants, and held-out documents kept out."""

import json
import random
import re
from dataclasses import replace

import pytest
from rank_bm25 import BM25Okapi

from ember.agents.calculator import evaluate
from ember.agents.citations import split_sentences
from ember.agents.focus import focus_passages
from ember.llm.tokenizer import Tokenizer
from ember.llm.training.dpo_data import load_pairs
from ember.llm.training.sft_data import load_sft
from ember.platform.alignment.synth import IDK, TRACE_SEARCH_K, facts_of, synthesize
from ember.retrieval.types import Hit

TOPICS = [
    "harbour",
    "orchard",
    "foundry",
    "observatory",
    "railway",
    "granary",
    "mill",
    "ferry",
    "quarry",
    "bakery",
]


def passages() -> list[Hit]:
    hits = []
    for doc, topic in enumerate(TOPICS):
        for part in range(2):
            text = (
                f"The {topic} of Lindmoor was rebuilt in the spring after the long flood. "
                f"Its records say the {topic} employed {40 + 13 * doc + part} workers in the busy season. "
                f"Visitors describe the {topic} as quiet and well kept in every season of the year. "
                f"The town council opened the {topic} to visitors in {1890 + 7 * doc + part} after repairs."
            )
            hits.append(Hit(100 * doc + part, doc, f"The {topic}", "", text, 0.0))
    return hits


@pytest.fixture(scope="module")
def data():
    corpus = passages()
    bm25 = BM25Okapi([h.text.lower().split() for h in corpus])

    def search(question: str, k: int) -> list[Hit]:
        scores = bm25.get_scores(question.lower().split())
        return [corpus[i] for i in sorted(range(len(corpus)), key=lambda i: -scores[i])[:k]]

    return corpus, synthesize(
        corpus,
        search,
        "town",
        questions=40,
        k=4,
        heldout_share=0.2,
        abstain_share=0.3,
        trace_share=0.5,
        replay_share=0.1,
        seed=1,
    )


def passage_texts(user_message: str) -> list[str]:
    return re.findall(r'<passage n="\d+" title="[^"]*">\n(.*?)\n</passage>', user_message, re.S)


def test_targets_quote_the_gold_sentence_and_cite_its_passage(data):
    _, synth = data
    chats = [row for row in synth.sft if "messages" in row]
    rag = [row for row in chats if "tools" not in row and row["messages"][-1]["content"] != IDK]
    assert len(rag) == synth.counts["rag"] >= 20
    for row in rag:
        target = row["messages"][-1]["content"]
        sentence, n = re.fullmatch(r"(.*) \[(\d+)\]", target).groups()
        assert sentence in passage_texts(row["messages"][1]["content"])[int(n) - 1]
        assert row["messages"][0]["content"].startswith(
            "You answer questions using only the numbered passages"
        )


def test_abstentions_have_no_passage_of_the_gold_document(data):
    corpus, synth = data
    abstentions = [row for row in synth.sft if "messages" in row and row["messages"][-1]["content"] == IDK]
    assert len(abstentions) == synth.counts["abstain"] > 0
    for row in abstentions:
        question = row["messages"][1]["content"].split("Question: ")[1]
        gold_topic = next(t for t in TOPICS if t in question) if any(t in question for t in TOPICS) else None
        texts = passage_texts(row["messages"][1]["content"])
        if gold_topic:
            assert all(gold_topic not in text for text in texts)


def test_agent_traces_use_the_real_tools_and_calculator(data):
    _, synth = data
    traces = [row for row in synth.sft if "tools" in row]
    assert len(traces) == synth.counts["trace"] > 0
    for row in traces:
        calls = [m["tool_calls"][0]["function"] for m in row["messages"] if m.get("tool_calls")]
        combined = re.split(r" [-+*/] ", calls[2]["arguments"]["expression"])
        assert not any(re.fullmatch(r"(19|20)\d\d", n) for n in combined)  # years are dates, not amounts
        assert [c["name"] for c in calls] == ["search", "search", "calculator"]
        for call in calls[:2]:  # keyword queries, not the task's sentence; few passages, so traces fit
            assert call["arguments"]["k"] == TRACE_SEARCH_K
            query = call["arguments"]["query"]
            assert query and "how many" not in query and not query.endswith("?")
            assert query not in row["messages"][1]["content"]
        results = [m["content"] for m in row["messages"] if m["role"] == "tool"]
        assert results[0].startswith('<passage n="1"') and "(id: chunk:" in results[0]
        assert [r.count("<passage n=") for r in results[:2]] == [TRACE_SEARCH_K] * 2
        assert results[2] == str(evaluate(calls[2]["arguments"]["expression"]))
        assert re.search(r"\[\d+\].*\[\d+\].*= " + re.escape(results[2]), row["messages"][-1]["content"])


def test_held_out_documents_stay_out_of_training(data):
    corpus, synth = data
    assert synth.heldout
    held_topics = {
        re.search(
            r"The (\w+) of Lindmoor", passage_texts(r["messages"][1]["content"])[r["citation"] - 1]
        ).group(1)
        for r in synth.heldout
    }
    for row in synth.sft + [{"messages": p["prompt"]} for p in synth.dpo]:
        text = json.dumps(row)
        assert not any(f"The {topic} of Lindmoor" in text for topic in held_topics)


def test_rows_load_as_trl_jsonl_and_pairs_differ(data, tmp_path):
    corpus, synth = data
    tokenizer = Tokenizer.train(["The harbour of Lindmoor was rebuilt"] * 3, vocab_size=300)
    (tmp_path / "sft.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synth.sft))
    (tmp_path / "dpo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synth.dpo))
    assert len(load_sft(tmp_path / "sft.jsonl", tokenizer, 4096)) == len(synth.sft)
    replayed = [row["text"] for row in synth.sft if "text" in row]
    assert len(replayed) == synth.counts["replay"] == round(0.1 * (len(synth.sft) - len(replayed)))
    assert set(replayed) <= {hit.text for hit in corpus}
    assert len(load_pairs(tmp_path / "dpo.jsonl", tokenizer, 4096)) == len(synth.dpo)
    kinds = {p["rejected"][0]["content"].count("[") for p in synth.dpo}
    assert 0 in kinds  # uncited rejections are among them
    cited_pairs = [p for p in synth.dpo if not p["expect"].get("abstain")]
    assert any(p["rejected"][0]["content"] == IDK for p in cited_pairs)  # false abstentions are rejected


def test_an_agent_trace_too_long_for_a_training_sequence_is_left_out(data):
    corpus, synth = data

    def search(question: str, k: int) -> list[Hit]:
        return corpus[:k]

    def fits(messages: list[dict], tools: list[dict] | None) -> bool:
        return tools is None  # every RAG prompt fits, no trace does

    tight = synthesize(corpus, search, "town", questions=40, k=4, trace_share=1.0, seed=1, fits=fits)
    assert synth.counts["trace"] > 0 and tight.counts["trace"] == 0
    assert not [row for row in tight.sft if "tools" in row]


def test_agent_traces_combine_their_numbers_in_more_ways_than_a_sum(data):
    _, synth = data
    traces = [row for row in synth.sft if "tools" in row]
    operators = {
        re.search(r" ([-+*/]) ", m["tool_calls"][0]["function"]["arguments"]["expression"]).group(1)
        for row in traces
        for m in row["messages"]
        if m.get("tool_calls") and m["tool_calls"][0]["function"]["name"] == "calculator"
    }
    assert len(operators) >= 3


def test_questions_and_targets_come_from_prose_not_markdown_or_labels():
    text = (
        "# Scaling laws\n\n"
        "## Compute\n"
        "- GPT-3 was trained on 300 billion tokens of filtered web text.\n"
        "The analysis in Section 2 found that loss falls as a power law\n"
        "of compute across 7 orders of magnitude.\n\n"
        "```\nsteps = 1000  # a code line is not a sentence.\n```\n"
        "| model | params |\n| small | 125 |\n"
        "the chunk began mid-sentence with 12 words of a sentence before.\n"
    )
    facts = facts_of(Hit(1, 1, "Scaling laws", "", text, 0.0), random.Random(0))
    numbered = {f.number: f for f in facts if f.number}
    assert set(numbered) == {"300", "7"}  # not the 3 of GPT-3, the 2 of Section 2, code, tables, fragments
    assert numbered["300"].sentence == "GPT-3 was trained on 300 billion tokens of filtered web text."
    assert numbered["300"].question == "GPT-3 was trained on how many billion tokens of filtered web text?"
    assert numbered["7"].sentence.startswith("The analysis in Section 2 found")  # a wrapped line rejoined
    for fact in facts:
        assert "#" not in fact.sentence and "-" != fact.sentence[0] and "\n" not in fact.sentence


def test_a_tight_sequence_keeps_every_passage_shortened_with_the_gold_sentence_whole():
    corpus = [
        Hit(i, i, f"Doc {i}", "", " ".join(f"Filler sentence {j} of document {i} goes on." for j in range(40))
            + f" The archive of document {i} holds {100 + i} maps in total." + " Tail words here." * 30, 0.0)
        for i in range(10)
    ]  # fmt: skip

    def search(question: str, k: int) -> list[Hit]:
        return corpus[:k]

    def fits(messages: list[dict], tools: list[dict] | None) -> bool:
        return len(messages[1]["content"]) < 8 * 1000

    synth = synthesize(corpus, search, "c", questions=6, k=8, heldout_share=0.0, trace_share=0.0, fits=fits)
    rows = [r for r in synth.sft if "messages" in r and r["messages"][-1]["content"] != IDK]
    assert rows
    for row in rows:
        texts = passage_texts(row["messages"][1]["content"])
        assert len(texts) == 8  # shortened, not dropped
        assert all(len(t) <= 905 for t in texts)
        sentence, n = re.fullmatch(r"(.*) \[(\d+)\]", row["messages"][-1]["content"]).groups()
        assert sentence in texts[int(n) - 1]


def test_focused_prompts_are_the_graphs_own_and_a_question_whose_sentence_is_cut_is_skipped(data):
    corpus, _ = data

    def search(question: str, k: int) -> list[Hit]:
        return corpus[:k]

    def best_sentence(question: str, hits: list[Hit]) -> list[Hit]:
        return focus_passages(question, hits, 1)

    def last_sentence_of_the_first(question: str, hits: list[Hit]) -> list[Hit]:
        return [replace(hits[0], text="… " + split_sentences(hits[0].text)[-1])] if hits else []

    for focus in (best_sentence, last_sentence_of_the_first):
        focused = synthesize(
            corpus, search, "town", questions=40, k=4, abstain_share=0.5, seed=1, focus=focus
        )
        rag = [row for row in focused.sft if "messages" in row and "tools" not in row]
        assert focused.counts["rag"] > 0 and focused.heldout
        for row in rag:  # every prompt shows one sentence; a target quotes it from passage [1]
            [text] = passage_texts(row["messages"][1]["content"])
            assert text.startswith("… ") or text.endswith(" …")
            target = row["messages"][-1]["content"]
            assert target == IDK or (target.endswith(" [1]") and target[: -len(" [1]")] in text)
        for row in focused.heldout:  # held-out prompts are focused the same way
            assert len(passage_texts(row["messages"][1]["content"])) == 1 and row["citation"] == 1
    assert focused.counts["focus_missed"] > 0  # most questions' sentences are not the last one

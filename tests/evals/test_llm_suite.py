"""`ember eval llm` on the real SmolLM2: bits per byte in fp32 and int8, multiple choice, the run folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from ember.evals.llm_suite import BUILTIN_MCQ, run_llm_suite
from ember.evals.llm_suite_model import load_scored_model
from ember.evals.multiple_choice import MCQuestion, MCResult, accuracy, context_of, load_mcq, score_question
from ember.platform.errors import InvalidInputError, NotFoundError
from ember.platform.service import EmberService
from ember.platform.settings import Settings

TEXT = (
    "The river rises in the hills north of the town and runs south through a wide valley of farms. "
    "In spring the water is high and fast; by late summer it is shallow enough to cross on foot."
)
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module", autouse=True)
def one_thread():  # noqa: ANN201
    """One torch thread: on a busy shared CPU, two spinning threads made these tests 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def fp32(smollm2_models_dir: Path):  # noqa: ANN201
    return load_scored_model(smollm2_models_dir / MODEL)


@pytest.fixture
def service(tmp_path: Path, smollm2_models_dir: Path):  # noqa: ANN201
    svc = EmberService(
        Settings(home=tmp_path / "home", llm_model=str(smollm2_models_dir / MODEL), sync_indexes=False)
    )
    yield svc
    svc.db.dispose()


def test_bits_per_byte_of_fp32_and_int8_agree(fp32, smollm2_models_dir: Path) -> None:
    from ember.llm.inference.evaluate import bits_per_byte

    int8 = load_scored_model(smollm2_models_dir / MODEL, "int8")
    assert (fp32.quantization, int8.quantization) == ("none", "int8") and int8.scores_by_steps
    full = bits_per_byte(fp32.model, fp32.tokenizer, TEXT)
    quantized = bits_per_byte(int8.model, int8.tokenizer, TEXT, step_by_step=True)
    assert 0.3 < full < 3 and 0.3 < quantized < 3
    assert abs(quantized - full) / full < 0.05


def test_options_are_scored_as_continuations_of_the_question(fp32) -> None:
    item = MCQuestion("q", "What colour is the sky on a clear day?", ("blue", "a green cheese wheel"), 0)
    result = score_question(fp32.model, fp32.tokenizer, item)
    # Each batched (right-padded) option equals that option scored alone, token by token.
    for option, batched in zip(item.choices, result.loglikelihoods, strict=True):
        context, tail = fp32.tokenizer.encode(context_of(item.question)), fp32.tokenizer.encode(f" {option}")
        logprobs = fp32.model(torch.tensor([context + tail])).log_softmax(-1)[0]
        alone = sum(logprobs[len(context) - 1 + i, t].item() for i, t in enumerate(tail))
        assert batched == pytest.approx(alone, abs=1e-3)
    assert result.option_bytes == (5, 21) and result.picked == 0


def test_acc_norm_divides_by_option_bytes() -> None:
    # Option 1 has the higher total but the lower per-byte log-likelihood: acc picks 1, acc_norm 0.
    short_wins = MCResult("a", 0, (-4.0, -3.0), (4, 2))
    long_wins = MCResult("b", 1, (-4.0, -6.0), (2, 12))
    assert (short_wins.picked, short_wins.picked_norm) == (1, 0)
    assert (long_wins.picked, long_wins.picked_norm) == (0, 1)
    assert accuracy([short_wins, long_wins]) == {"questions": 2, "acc": 0.0, "acc_norm": 1.0}


def test_the_builtin_set_is_valid() -> None:
    questions = load_mcq(BUILTIN_MCQ)
    assert 20 <= len(questions) <= 30 and all(len(q.choices) == 4 for q in questions)
    assert len({q.id for q in questions}) == len(questions)
    assert {q.answer for q in questions} == {0, 1, 2, 3}  # the right answer is not always in one place


def test_the_model_picks_what_it_knows(fp32) -> None:
    # Facts a 135M model knows (it fails most questions about Ember itself: see docs/benchmarks.md).
    questions = [
        MCQuestion("paris", "What is the capital of France?", ("Paris", "Tokyo", "a bicycle", "Nairobi"), 0),
        MCQuestion("dog", "Which animal barks?", ("a fish", "a dog", "a tree", "a cloud"), 1),
    ]
    scores = accuracy([score_question(fp32.model, fp32.tokenizer, q) for q in questions])
    assert scores == {"questions": 2, "acc": 1.0, "acc_norm": 1.0}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"id": 1, "question": "q?", "choices": ["a", "b"], "answer": 0', "not valid JSON"),
        ('{"id": 1, "question": "q?", "choices": ["a", "b"]}', "field 'answer' is missing"),
        ('{"id": 1, "question": "q?", "choices": "ab", "answer": 0}', "field 'choices' must be a list"),
        ('{"id": 1, "question": "q?", "choices": ["a", "b"], "answer": 2}', "field 'answer' is 2, outside"),
        ('{"id": 1, "question": "q?", "choices": ["a", "b"], "answer": "E"}', "field 'answer' is 4, outside"),
        ('{"id": 1, "question": "", "choices": ["a", "b"], "answer": 0}', "field 'question' is empty"),
        ('{"id": 1, "question": "q?", "choices": ["a", "b"], "answer": 0.5}', "field 'answer' must be"),
        ('["a list"]', "expected a JSON object"),
    ],
)
def test_a_bad_mcq_line_is_named_by_file_line_and_field(tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "mcq.jsonl"
    good = '{"id": 0, "question": "q?", "choices": ["a", "b"], "answer": "B"}'
    path.write_text(f"{good}\n\n{line}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=rf"mcq.jsonl:3: .*{problem}"):
        load_mcq(path)


def test_an_empty_mcq_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="empty.jsonl: the file holds no items"):
        load_mcq(tmp_path / "empty.jsonl")


def test_the_suite_writes_a_run_folder_and_a_resumed_run_skips_done_items(service, tmp_path: Path) -> None:
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "river.md").write_text(TEXT, encoding="utf-8")
    mcq = tmp_path / "mcq.jsonl"
    lines = [json.dumps(json.loads(line)) for line in BUILTIN_MCQ.read_text().splitlines()[:3]]
    mcq.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runs = tmp_path / "runs"
    summary = run_llm_suite(service, texts=[str(tmp_path / "texts")], mcq=mcq, runs_dir=runs)
    run_dir = Path(summary["run_dir"])
    items = [json.loads(line) for line in (run_dir / "items.jsonl").read_text().splitlines()]
    assert [i["kind"] for i in items] == ["bpb", "mcq", "mcq", "mcq"]
    assert summary["bpb"] == pytest.approx(items[0]["bpb"]) and 0.3 < summary["bpb"] < 3
    assert summary["mcq_questions"] == 3 and summary["mcq_acc"] in (0, 1 / 3, 2 / 3, 1)
    assert json.loads((run_dir / "config.json").read_text())["quantization"] == "none"
    again = run_llm_suite(service, texts=[str(tmp_path / "texts")], mcq=mcq, runs_dir=runs, resume=run_dir)
    assert again == summary and len((run_dir / "items.jsonl").read_text().splitlines()) == 4
    with pytest.raises(InvalidInputError, match="that run scored quantization 'none', this one 'int8'"):
        run_llm_suite(service, mcq=mcq, quantize="int8", runs_dir=runs, resume=run_dir)


def test_a_collection_is_scored_chunk_by_chunk(service, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "river.md").write_text(f"# River\n\n{TEXT}\n", encoding="utf-8")
    service.ingest(str(docs), "notes")
    summary = run_llm_suite(service, collection="notes", runs_dir=tmp_path / "runs")
    assert summary["bpb_texts"] == 1 and 0.3 < summary["bpb"] < 3 and math.isfinite(summary["bpb"])
    with pytest.raises(NotFoundError, match="nope"):
        run_llm_suite(service, collection="nope", runs_dir=tmp_path / "runs")


def test_unknown_models_files_and_precisions_are_clear_errors(service, tmp_path: Path) -> None:
    mcq = BUILTIN_MCQ
    with pytest.raises(NotFoundError, match="no Ember model 'no-such-model'"):
        run_llm_suite(service, mcq=mcq, model="no-such-model", runs_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="missing/\\*.txt: no such file"):
        run_llm_suite(service, texts=[str(tmp_path / "missing/*.txt")], runs_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="--quantize must be one of none, int8, int4"):
        run_llm_suite(service, mcq=mcq, quantize="int3", runs_dir=tmp_path)
    with pytest.raises(InvalidInputError, match="nothing to evaluate"):
        run_llm_suite(service, runs_dir=tmp_path)

import numpy as np
import pytest
from sentence_transformers import CrossEncoder

from ember.retrieval.collection_index import CollectionIndex, indexed_text
from ember.retrieval.embedder import DEFAULT_EMBEDDING_MODEL, resolve_model_path
from ember.retrieval.rerank import Reranker, blend, saved_settings
from ember.retrieval.reranker_training import keep_first_layers, mine_queries, train_reranker
from ember.retrieval.retriever import RERANK_SKIPPED, Retriever
from ember.retrieval.store import IndexStore


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_records, small_vectors):
    home = tmp_path_factory.mktemp("home")
    index = CollectionIndex(home / "indexes" / "pydoc")
    index.upsert(small_records, vectors=small_vectors)
    index.save()
    steps = []
    report = train_reranker(
        index,
        DEFAULT_EMBEDDING_MODEL,
        home / "models" / "rerankers" / "tiny",
        epochs=3,
        batch_size=2,
        learning_rate=3e-4,
        max_length=64,
        max_queries=16,
        max_heldout=6,
        progress=lambda step, total, loss: steps.append((step, total)),
    )
    return home, report, steps


def test_mined_queries_have_positives_and_hard_negatives_from_other_documents(built_index):
    queries = mine_queries(built_index)
    records = built_index.records
    assert {q.text for q in queries} >= {r.title for r in records.values()}
    chunk_texts = {r.chunk_id: r.text for r in records.values()}
    # Some queries are word windows of an inner sentence: found verbatim in their chunk, not its start.
    assert any(
        q.text in chunk_texts[q.positive] and not chunk_texts[q.positive].startswith(q.text) for q in queries
    )
    for q in queries:
        assert len(q.negatives) == 7
        assert all(records[n].document_id != q.document_id for n in q.negatives)
        assert records[q.positive].document_id == q.document_id


def test_trainer_runs_end_to_end_and_loss_goes_down(trained):
    home, report, steps = trained
    losses = np.array(report.losses)
    quarter = max(1, len(losses) // 4)
    assert losses[-quarter:].mean() < 0.8 * losses[:quarter].mean()
    assert steps[-1][0] == steps[-1][1] == len(losses)
    assert report.heldout_queries > 0 and set(report.after) == {"mrr@10", "ndcg@10"}
    # The saved blend weight is the held-out optimum: no worse than the cross-encoder or BM25 alone.
    assert report.blended["mrr@10"] >= max(report.before["mrr@10"], report.after["mrr@10"])
    model_dir = home / "models" / "rerankers" / "tiny"
    assert (model_dir / "config.json").exists()
    assert saved_settings(str(model_dir)) == {"blend_weight": report.blend_weight, "max_length": 64}


def test_pipeline_orders_the_fused_head_by_cross_encoder_score(trained, small_records):
    home, _, _ = trained
    model_dir = str(home / "models" / "rerankers" / "tiny")
    retriever = Retriever(IndexStore(home / "indexes"), Reranker(model_dir, blend_weight=1.0))
    query = "how are exceptions raised and caught"
    hybrid = retriever.run(query, ["pydoc"], k=30, mode="hybrid")
    reranked = retriever.run(query, ["pydoc"], k=8, mode="hybrid+rerank")
    assert not reranked.notes and len(reranked.hits) == 8

    head = [h.chunk_id for h in hybrid.hits]  # the fused top-30 the reranker sees
    records = {r.chunk_id: r for r in small_records}
    reference = retriever.reranker.scores(query, [indexed_text(records[c]) for c in head])
    expected = [head[i] for i in np.argsort(-reference, kind="stable")[:8]]
    assert [h.chunk_id for h in reranked.hits] == expected
    for rank, hit in enumerate(reranked.hits, start=1):
        assert hit.stages["rerank"].rank == rank
        assert hit.stages["fused"].rank == head.index(hit.chunk_id) + 1
        assert hit.score == pytest.approx(hit.stages["rerank"].score)


def test_without_a_reranker_the_stage_is_skipped_and_said(trained):
    home, _, _ = trained
    result = Retriever(IndexStore(home / "indexes")).run("exceptions", ["pydoc"], mode="hybrid+rerank")
    assert result.notes == [RERANK_SKIPPED]
    assert "rerank" not in result.hits[0].stages and result.hits[0].stages["fused"].rank == 1


def test_a_blended_reranker_mixes_in_the_fused_score_but_reports_the_raw_one(trained):
    home, _, _ = trained
    model_dir = str(home / "models" / "rerankers" / "tiny")
    query = "how are exceptions raised and caught"
    store = IndexStore(home / "indexes")
    fused = Retriever(store).run(query, ["pydoc"], k=30, mode="hybrid").hits
    reranker = Reranker(model_dir, blend_weight=0.4)
    result = Retriever(store, reranker).run(query, ["pydoc"], k=8, mode="hybrid+rerank")

    raw = reranker.scores(query, [indexed_text(store.get("pydoc").records[h.chunk_id]) for h in fused])
    expected = blend(raw, np.array([h.score for h in fused]), 0.4)
    assert [h.chunk_id for h in result.hits] == [
        fused[i].chunk_id for i in np.argsort(-expected, kind="stable")[:8]
    ]
    for hit in result.hits:
        i = [h.chunk_id for h in fused].index(hit.chunk_id)
        assert hit.score == pytest.approx(expected[i])
        assert hit.stages["rerank"].score == pytest.approx(raw[i])  # what relevance thresholds read


def test_blend_normalizes_both_scores_and_leaves_a_pure_reranker_raw():
    ce, first = np.array([2.0, -1.0, 0.5]), np.array([10.0, 30.0, 20.0])
    assert blend(ce, first, 1.0).tolist() == [2.0, -1.0, 0.5]
    assert blend(ce, first, 0.0).tolist() == [0.0, 1.0, 0.5]
    assert blend(ce, first, 0.5).tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_reranker_scores_match_the_fp32_cross_encoder(trained, small_records):
    home, _, _ = trained
    model_dir = str(home / "models" / "rerankers" / "tiny")
    pairs = [("how are exceptions raised and caught", indexed_text(r)) for r in small_records[:30]]
    fp32 = CrossEncoder(model_dir).predict(pairs)
    ours = Reranker(model_dir).scores(pairs[0][0], [p for _, p in pairs])  # bf16 where the CPU has it
    assert np.abs(ours - fp32).max() < 0.05 * (fp32.max() - fp32.min())
    assert np.corrcoef(ours, fp32)[0, 1] > 0.99


def test_a_shallower_reranker_keeps_the_first_layers_and_reloads_with_them(tmp_path):
    model = CrossEncoder(resolve_model_path(DEFAULT_EMBEDDING_MODEL), num_labels=1)
    first = model.model.base_model.encoder.layer[0]
    keep_first_layers(model.model, 2)
    assert len(model.model.base_model.encoder.layer) == 2 and model.model.base_model.encoder.layer[0] is first
    model.save(str(tmp_path / "l2"))
    assert CrossEncoder(str(tmp_path / "l2")).model.config.num_hidden_layers == 2
    with pytest.raises(ValueError, match="layers must be within 1..2"):
        keep_first_layers(model.model, 3)


def test_a_blended_rerank_of_no_candidates_returns_no_hits(trained):
    home, _, _ = trained
    reranker = Reranker(str(home / "models" / "rerankers" / "tiny"), blend_weight=0.4)
    retriever = Retriever(IndexStore(home / "indexes"), reranker)
    result = retriever.run("exceptions", ["pydoc"], filters={"document_id": -1}, mode="hybrid+rerank")
    assert result.hits == []


def test_a_broken_reranker_settings_file_is_named_in_the_error(tmp_path):
    (tmp_path / "ember_reranker.json").write_text("{not json")
    with pytest.raises(ValueError, match="ember_reranker.json is not a valid reranker settings file"):
        saved_settings(str(tmp_path))
    (tmp_path / "ember_reranker.json").write_text('{"blend_weight": 3}')
    with pytest.raises(ValueError, match="blend_weight must be within"):
        saved_settings(str(tmp_path))

from ember.retrieval.terms import TermSplitter


def test_identifiers_and_numbers_stay_whole():
    tokens = TermSplitter()("GPT-4 has 50,257 tokens and used 3.14e23 FLOPs in v1.2.3 (file_name.py).")
    assert tokens == [
        "gpt-4",
        "has",
        "50,257",
        "tokens",
        "and",
        "used",
        "3.14e23",
        "flops",
        "in",
        "v1.2.3",
        "file_name.py",
    ]


def test_unicode_lowercase_and_trailing_punctuation():
    assert TermSplitter()("Über Straße, CAFÉ. Ελληνικά!") == ["über", "strasse", "café", "ελληνικά"]


def test_stemming_and_stopwords_are_settable():
    text = "The indexes are running"
    assert TermSplitter()(text) == ["the", "indexes", "are", "running"]
    assert TermSplitter(stopwords=True)(text) == ["indexes", "running"]
    assert TermSplitter(stem=True, stopwords=True)(text) == ["index", "run"]

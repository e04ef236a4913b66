from ember.retrieval.tokenizer import Tokenizer


def test_identifiers_and_numbers_stay_whole():
    tokens = Tokenizer()("GPT-4 has 50,257 tokens and used 3.14e23 FLOPs in v1.2.3 (file_name.py).")
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
    assert Tokenizer()("Über Straße, CAFÉ. Ελληνικά!") == ["über", "strasse", "café", "ελληνικά"]


def test_stemming_and_stopwords_are_settable():
    text = "The indexes are running"
    assert Tokenizer()(text) == ["the", "indexes", "are", "running"]
    assert Tokenizer(stopwords=True)(text) == ["indexes", "running"]
    assert Tokenizer(stem=True, stopwords=True)(text) == ["index", "run"]

import pytest
from pydantic import ValidationError

from ember.platform.settings import Settings, describe_sources


def test_environment_beats_file_beats_default(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text("chunk_size = 200\nchunk_overlap = 20\n")
    monkeypatch.setenv("EMBER_CHUNK_OVERLAP", "10")
    settings = Settings()
    assert (settings.chunk_size, settings.chunk_overlap, settings.max_file_mb) == (200, 10, 200.0)
    sources = {name: source for name, _, source in describe_sources(settings)}
    assert sources["chunk_size"].startswith("file ")
    assert sources["chunk_overlap"] == "env EMBER_CHUNK_OVERLAP"
    assert sources["max_file_mb"] == "default"
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'ember.db'}"


def test_invalid_values_are_rejected_with_the_setting_named(monkeypatch, tmp_path):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    monkeypatch.setenv("EMBER_CHUNK_SIZE", "-3")
    with pytest.raises(ValidationError, match="chunk_size"):
        Settings()

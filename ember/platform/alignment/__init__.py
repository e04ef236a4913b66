"""`ember align rag`: teach the local model to answer from a collection, with data made from its own text."""

"""Running a model: the decoder, its checkpoint format, the engine (KV cache, sampling, stopping), chat and
the tool-call format, quantized layers, and the scheduler that owns the engine."""

"""Ember: self-hosted agentic RAG on its own LLM stack."""

__version__ = "0.1.0"

"""Layer 2: the LangGraph graphs over the LLM (ember.llm) and retrieval (ember.retrieval).

rag.RagGraph (retrieve → grade → generate → verify citations), agent.AgentGraph (tool calling with a loop
guard and a RAG fallback), the tools and calculator, citation handling, and the LLM backends (local engine
or any OpenAI-compatible endpoint) behind chat_model.EmberChatModel. Data access comes in as callables:
nothing here imports ember.platform.
"""

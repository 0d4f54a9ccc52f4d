"""Built-in retrieval plugin (FAISS dense + SQLite FTS5 keywords)."""

"""Ingestion: files → loaders → structured blocks → chunks → SQL rows (→ index hook)."""

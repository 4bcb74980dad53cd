"""Search: hybrid retrieval (dense + BM25, filters and access control applied before ranking) fused by RRF."""
from .retriever import MODES, Filters, Hit, Retriever

__all__ = ["MODES", "Filters", "Hit", "Retriever"]

"""Integrations with other frameworks: the retriever as a LangChain `BaseRetriever`."""

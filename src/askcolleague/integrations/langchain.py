"""askcolleague's hybrid retriever as a LangChain `BaseRetriever` returning cited `Document`s."""
from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from ..answer.result import cited_authors
from ..search import Filters


class AskColleagueRetriever(BaseRetriever):
    """Hybrid (dense + BM25, RRF) retrieval over an askcolleague index, for LangChain chains.

    >>> from askcolleague.answer import Assistant
    >>> retriever = AskColleagueRetriever(assistant=Assistant.from_index("indexes/default"), k=4)
    >>> docs = retriever.invoke("How do I request a new laptop?")   # doctest: +SKIP
    >>> docs[0].metadata["title"], docs[0].metadata["authors"][0]["name"]   # doctest: +SKIP
    ('Laptop requests', 'Priya Raman')

    Each Document's page_content is the passage; metadata carries everything a citation needs:
    chunk_id, doc_id, title, section, url, source_type, date, score, authors.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    assistant: Any
    k: int = 8
    mode: str = "hybrid"
    filters: dict = {}

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        f = self.filters
        filt = Filters(source_types=f.get("source_types"), person=f.get("person"), tags=f.get("tags"),
                       since=f.get("since"), until=f.get("until"), groups=f.get("groups"))
        retriever = self.assistant.retriever
        hits = retriever.search(query, k=self.k, mode=self.mode, filters=filt)
        store = self.assistant.index.store
        links = store.links_for([h.id for h in hits])
        return [Document(page_content=h.row["text"], metadata={
            "chunk_id": h.row["chunk_id"], "doc_id": h.row["doc_id"], "title": h.row["title"],
            "section": h.row["section"], "url": h.row["url"], "source_type": h.row["source_type"],
            "date": h.row["date"], "score": h.score, "authors": cited_authors(store, h.row, links, f.get("groups"))}) for h in hits]

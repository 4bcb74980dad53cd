"""Answers with numbered, checked citations and the people to ask: `Assistant.ask(question) -> Answer`.

assistant.py runs the stages; extractive.py quotes whole sentences; experts.py ranks the people;
questions.py tells attribution from expertise questions; result.py is the JSON contract; llm.py
generates and checks an answer with an LLM when one is configured.
"""
from .assistant import Assistant, LiveAssistant
from .questions import question_kind, statement_of
from .result import Answer, Citation, PersonHit, as_seen, cited_authors

__all__ = ["Assistant", "LiveAssistant", "Answer", "Citation", "PersonHit", "as_seen", "cited_authors",
           "question_kind", "statement_of"]

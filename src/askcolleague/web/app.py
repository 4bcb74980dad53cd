"""The web chat (Gradio): cited answers, a sources panel, who to ask, filters, feedback, login, and the `/ask` API."""
from __future__ import annotations

import asyncio
import queue
import sys
import threading
from pathlib import Path
from typing import Any, Iterator

import gradio as gr
from starlette.middleware import Middleware

from ..answer import Assistant, LiveAssistant
from ..answer.bounds import PAGE_PASSAGE_CHARS, bound_answer, clip
from ..answer.tools import MAX_K, MAX_QUESTION_CHARS, iso_date, visible_groups
from ..errors import AskColleagueError, LoginError
from ..index import backend_for
from ..indexing.build import build
from ..models import SOURCE_TYPES
from ..settings import Settings
from .auth import Users
from .followup import rewrite_query
from .guard import Guard
from .mcp import HttpMCP, build_server, http_resolver
from .render import answer_markdown, header_html, md, people_html, sources_html, status_line

ASSETS = Path(__file__).parent / "assets"
CSS = (ASSETS / "style.css").read_text(encoding="utf-8")
# Runs once per page: [n] links scroll to (and open) their passage; "wrong source" buttons report.
JS_SOURCES = (ASSETS / "sources.js").read_text(encoding="utf-8")
ROOT = Path(__file__).resolve().parents[3]  # the repository (src/askcolleague/web/app.py)

# Queue: the chat and the API share the concurrency group "assistant". An extractive answer is
# CPU-bound, but each question embeds with one ONNX thread and searches with one FAISS thread (BM25
# in a second thread), so CONCURRENCY = 2 answers at a time fill the 2 cores: on an idle 2-core
# machine (bench/bench_load.py, 20 clients x 500 questions, alternating) 2 gave 9.0 q/s against 6.4
# for 1 and 8.8 for 3. With an LLM configured an answer mostly waits for the LLM server,
# so LLM_CONCURRENCY run at a time. Up to QUEUE_MAX_SIZE requests wait in line (the page shows their
# position): room for 20 busy clients three times over, and at ~9 answers/s a full line drains in
# ~7 s; beyond that a request is refused at once rather than waiting longer. Feedback events are
# short writes (limit 4). Shared state is safe for concurrent reads: SQLite in serialized mode,
# FAISS search, the embedders (ONNX sessions are thread-safe; torch inference is locked).
CONCURRENCY = 2
LLM_CONCURRENCY = 4
QUEUE_MAX_SIZE = 64

# ------------------------------------------------------------------------------------------
# the assistant, once per process; who may see what

_LIVE: dict[tuple, LiveAssistant] = {}
_LOCK = threading.Lock()


def get_live(index_path: Path, settings: Settings) -> LiveAssistant:
    """The process's LiveAssistant for an index (and settings): it follows the index's live version
    across rebuilds; the first version is loaded and warmed up here, on first use."""
    where = index_path if backend_for(index_path).name != "folder" else Path(index_path).resolve()
    key = (str(where), tuple(sorted(settings.values.items())))
    with _LOCK:
        if key not in _LIVE:
            live = LiveAssistant(index_path, settings)
            live.get().ask("warm up", k=2, llm=False)  # loads the model; never calls an LLM
            _LIVE[key] = live
        return _LIVE[key]


def get_assistant(index_path: Path, settings: Settings) -> Assistant:
    """The Assistant of the index's live version (see get_live)."""
    return get_live(index_path, settings).get()


def _auth(users: Users):
    """Gradio's `auth` check; scrypt runs in a worker thread so a login never stalls the server.
    (Failed logins are limited before this runs: see web/guard.py.)"""
    async def check(username: str, password: str) -> bool:
        try:
            return await asyncio.to_thread(users.check, username, password)
        except LoginError:  # the users file is unusable: nobody logs in (the guard says why)
            return False
    return check


def _auth_message(settings: Settings) -> str:
    """The login page's text: the page shows nothing for a login refused by the failed-login limit."""
    n = settings.login_max_failures
    return "Log in with your askcolleague account." + (
        f" After {n} failed attempts an account is locked for a while: if nothing happens when you log in, "
        "wait a minute and try again." if n > 0 else "")


def _filters(source_type, person, since, until) -> dict:
    types = [source_type] if isinstance(source_type, str) else list(source_type or [])
    return {"source_type": [t for t in types if t] or None, "person": (person or "").strip() or None,
            "since": iso_date(since, "since"), "until": iso_date(until, "until")}


def _stream(asst: Assistant, query: str, kw: dict) -> Iterator[tuple[str | None, Any]]:
    """Yield (partial text, None) while an LLM streams, then (None, Answer)."""
    if not asst.settings.llm_base_url:
        yield None, asst.ask(query, **kw)
        return
    tokens: queue.Queue = queue.Queue()
    box: dict = {}

    def run():
        try:
            box["answer"] = asst.ask(query, on_token=tokens.put, **kw)
        except BaseException as e:  # re-raised in the caller's thread
            box["error"] = e
        finally:
            tokens.put(None)

    threading.Thread(target=run, daemon=True).start()
    text, done = "", False
    while not done:
        parts = [tokens.get()]
        while not tokens.empty():
            parts.append(tokens.get())
        done = parts[-1] is None
        text += "".join(p for p in parts if p)
        if not done:
            yield text, None
    if "error" in box:
        raise box["error"]
    yield None, box["answer"]


# Fonts bundled with Gradio, so nothing is fetched from the web. Not weight 600: Gradio 6's
# SourceSansPro-SemiBold.woff2 is a 55-glyph subset, and bold words would mix fonts.
THEME = gr.themes.Default(primary_hue="indigo", font=[
    gr.themes.LocalFont("Source Sans Pro", weights=(400, 700)), "ui-sans-serif", "system-ui", "sans-serif"])


def _choices(asst: Assistant, groups: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(source types present, people names) of an index version, for the filters.

    With `groups` (login on): only what the user may see — source types of visible passages, and
    people with a visible profile or passage (a profile carries its person's groups).
    """
    present, names = asst.index.store.facets(groups)
    types = [t for t in SOURCE_TYPES if t in present] + sorted(t for t in present - set(SOURCE_TYPES) if t)
    return types, sorted(names, key=str.lower)


def visible_counts(asst: Assistant, groups: list[str], people: list[str] | None = None) -> dict:
    """The status line's counts of what a logged-in user may see (documents, passages, people);
    `people`: the visible people's names when the caller has them already (see _choices)."""
    chunks, docs = asst.index.store.visible_totals(groups)
    if people is None:
        people = _choices(asst, groups)[1]
    return {"documents": docs, "chunks": chunks, "people": len(people)}


MAX_COMMENT_CHARS = 2_000   # a feedback comment is cut to this


def _text_arg(value: Any, name: str, limit: int, required: bool = False) -> str | None:
    """An API argument that must be a string (or left out): a clear gr.Error for anything else."""
    if value is None or (value == "" and not required):
        if required:
            raise gr.Error(f"{name} is empty")
        return None
    if not isinstance(value, str):
        raise gr.Error(f"{name} must be a string, not {type(value).__name__}")
    if required and not value.strip():
        raise gr.Error(f"{name} is empty")
    if len(value) > limit:
        raise gr.Error(f"{name} is too long (at most {limit:,} characters)")
    return value


def _k_arg(k: Any) -> int | None:
    """The /ask `k` argument: a whole number from 1 to MAX_K (or left out)."""
    if k is None or k == "" or k == 0:
        return None
    if isinstance(k, float) and k.is_integer():
        k = int(k)
    elif isinstance(k, str) and k.strip().isdigit():
        k = int(k.strip())
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise gr.Error(f"k must be a whole number from 1 to {MAX_K}")
    return k


def create_app(index_path: str | Path, settings: Settings | None = None, users: Users | None = None) -> gr.Blocks:
    """The chat page and the `/ask`, `/people` API for one index.

    Every request is answered by the index's live version (a rebuild is picked up by the next
    request; see LiveAssistant). With `users` (default: the users_file setting) every request
    answers as its logged-in user: only passages without groups or in their person's groups; a
    request without a known user is refused. Launch with `auth=` (serve() does).
    """
    settings = settings or Settings.load()
    backend = backend_for(index_path)
    path = backend.location(index_path)
    if users is None and settings.users_file:
        users = Users(settings.users_file, grace_seconds=settings.users_file_grace_seconds)
    live = get_live(path, settings)
    first = live.get()
    # with login, the page as first sent shows only what every user may see; on_load fills in the rest
    types, people_names = _choices(first, [] if users is not None else None)
    feedback = backend.feedback(path)

    def session(request: gr.Request | None) -> tuple[Assistant, dict]:
        """The Assistant of the live version, and the access filter for the request's user."""
        asst = live.get()
        if users is None:
            return asst, {}
        user = users.get(getattr(request, "username", None))
        if user is None:
            raise LoginError("you are not logged in as a user of this app (any more); reload the page and log in")
        return asst, {"groups": visible_groups(asst, user.person)}

    def on_load(request: gr.Request):
        """The header and filters of the live version, when a page opens (for its user, with login)."""
        try:
            asst, access = session(request)
        except LoginError:
            return gr.update(), gr.update(choices=[]), gr.update(choices=[("anyone", "")])
        groups = access.get("groups")
        t, names = _choices(asst, groups)
        return (header_for(asst, access, names), gr.update(choices=t),
                gr.update(choices=[("anyone", "")] + [(n, n) for n in names]))

    def header_for(asst: Assistant, access: dict, names: list[str] | None = None) -> str:
        if "groups" not in access:
            return header_html(asst.index.manifest)
        return header_html(asst.index.manifest, visible_counts(asst, access["groups"], names))

    def owns(turns, request: gr.Request | None) -> bool:
        """Whether a conversation's state belongs to the request's user (each turn records its user):
        a request that reached another user's session must never read it (the guard, web/guard.py, refuses it first)."""
        me = getattr(request, "username", None)
        return all(isinstance(t, dict) and t.get("user") == me for t in turns or [])

    def respond(message, chat, turns, source_type, person, since, until, request: gr.Request):
        chat = list(chat) if isinstance(chat, list) else []
        if not owns(turns, request):
            chat += [{"role": "assistant", "content": "⚠ This conversation belongs to another login; "
                                                      "reload the page."}]
            yield gr.update(), chat, gr.update(), gr.update(), gr.update(), gr.update()
            return
        question = " ".join(message.split()) if isinstance(message, str) else ""
        turns = list(turns or [])
        if not question:
            yield gr.update(), chat, turns, gr.update(), gr.update(), gr.update()
            return
        user = getattr(request, "username", None)
        query = rewrite_query(question, [t["query"] for t in turns])
        chat += [{"role": "user", "content": md(clip(question, MAX_QUESTION_CHARS))},
                 {"role": "assistant", "content": "*Searching…*"}]
        yield "", chat, turns, gr.update(), gr.update(), gr.update()
        try:
            if len(question) > MAX_QUESTION_CHARS:
                raise ValueError(f"the question is too long (at most {MAX_QUESTION_CHARS:,} characters)")
            asst, access = session(request)
            kw = {**_filters(source_type, person, since, until), **access}
            for partial, ans in _stream(asst, query, kw):
                if ans is None:
                    chat[-1] = {"role": "assistant", "content": md(clip(partial, PAGE_PASSAGE_CHARS)) + " ▍"}
                    yield "", chat, turns, gr.update(), gr.update(), gr.update()
        except (AskColleagueError, ValueError) as e:
            chat[-1] = {"role": "assistant", "content": f"⚠ {md(e)}"}
            turns.append({"question": question, "query": query, "answer": None, "user": user})  # turn i = chat pair i
            yield "", chat, turns, gr.update(), gr.update(), gr.update()
            return
        a = ans.to_dict()
        a["question"] = question
        t = len(turns)
        turns.append({"question": question, "query": query, "answer": a, "index_version": asst.index.version,
                      "user": user})
        shown = bound_answer(a)  # turns keep the whole answer: the sources panel bounds what it shows
        body = answer_markdown(shown, t)
        if query != question:
            body += f'\n\n<span class="ac-rewrite">Searched for: {md(clip(query))}</span>'
        chat[-1] = {"role": "assistant", "content": body}
        yield "", chat, turns, sources_html(turns), people_html(t, shown), header_for(asst, access)

    def _record(kind, turn, turns, comment, chunk_id=None) -> bool:
        a = turns[turn]["answer"] if isinstance(turn, int) and 0 <= turn < len(turns or []) else None
        if not a:
            return False
        comment = clip(comment, MAX_COMMENT_CHARS) if isinstance(comment, str) else None
        feedback.add(kind, turns[turn]["question"], a["answer"], [c["chunk_id"] for c in a["citations"]],
                     chunk_id=chunk_id, comment=comment, query=turns[turn]["query"],
                     index_version=turns[turn].get("index_version"))
        return True

    def on_like(turns, comment, data: gr.LikeData, request: gr.Request):
        if not owns(turns, request):
            return gr.update()
        idx = data.index[0] if isinstance(data.index, (list, tuple)) and data.index else data.index
        if (isinstance(idx, int) and not isinstance(idx, bool) and data.liked in (True, False)
                and _record("up" if data.liked else "down", idx // 2, turns, comment)):
            gr.Info("Thanks, your feedback was saved.")
            return ""
        return gr.update()

    def on_wrong(turns, comment, evt: gr.EventData, request: gr.Request):
        if not owns(turns, request):
            return gr.update()
        d = getattr(evt, "_data", None)
        d = d if isinstance(d, dict) else {}
        t, n = d.get("turn"), d.get("n")
        ans = turns[t]["answer"] if isinstance(t, int) and 0 <= t < len(turns or []) else None
        cite = next((c for c in (ans or {}).get("citations", []) if c["n"] == n), None)
        if cite and _record("wrong_source", t, turns, comment, chunk_id=cite["chunk_id"]):
            gr.Info(f"Thanks: source [{n}] reported.")
            return ""
        return gr.update()

    def api_ask(question: str, k: int | None = None, mode: str | None = None, source_type: list[str] | None = None,
                person: str | None = None, since: str | None = None, until: str | None = None,
                request: gr.Request = None) -> dict:
        """Answer a question: the JSON contract of Answer.to_dict() (citations, people, ...), plus the
        index_version that answered. Passage texts longer than MAX_PASSAGE_CHARS come cut, with
        `truncated: true` (see bound_answer)."""
        question = _text_arg(question, "question", MAX_QUESTION_CHARS, required=True)
        k = _k_arg(k)
        mode = _text_arg(mode, "mode", 10)
        if mode and mode not in ("hybrid", "dense", "bm25"):
            raise gr.Error("mode must be hybrid, dense or bm25")
        if source_type is not None and not isinstance(source_type, str) and not (
                isinstance(source_type, list) and all(isinstance(x, str) for x in source_type)):
            raise gr.Error("source_type must be a source type or a list of them")
        person, since, until = (_text_arg(v, name, 200) for v, name in
                                ((person, "person"), (since, "since"), (until, "until")))
        try:
            asst, access = session(request)
            out = bound_answer(asst.ask(question, k=k, mode=mode or None,
                                        **_filters(source_type, person, since, until), **access).to_dict())
        except (AskColleagueError, ValueError) as e:
            raise gr.Error(str(e)) from None
        out["index_version"] = asst.index.version
        return out

    def api_people(topic: str, request: gr.Request = None) -> list[dict]:
        """Who knows about a topic: people with the passages they wrote as evidence."""
        topic = _text_arg(topic, "topic", MAX_QUESTION_CHARS, required=True)
        try:
            asst, access = session(request)
            return [dict(d, evidence=[dict(e, title=clip(e.get("title"))) for e in d.get("evidence") or []])
                    for d in (p.to_dict() for p in asst.find_people(topic, **access))]
        except AskColleagueError as e:
            raise gr.Error(str(e)) from None

    with gr.Blocks(title="askcolleague", analytics_enabled=False) as demo:
        turns = gr.State([])
        header = gr.HTML(header_for(first, {} if users is None else {"groups": []}), elem_id="ac-header",
                         js_on_load=None)
        with gr.Row(elem_id="ac-main", equal_height=False):
            with gr.Column(scale=3, min_width=300):
                chat = gr.Chatbot(elem_id="ac-chat", height=520, show_label=False, render_markdown=True,
                                  sanitize_html=True, allow_tags=False, latex_delimiters=[], buttons=["copy"],
                                  feedback_options=("Like", "Dislike"), layout="bubble",
                                  placeholder="Ask a question about the company: policies, how-tos, decisions, "
                                              "who owns what. Follow-up questions use the conversation.")
                with gr.Row(equal_height=True):
                    box = gr.Textbox(placeholder="e.g. How do I request a new laptop?", show_label=False,
                                     scale=5, lines=1, max_lines=4, elem_id="ac-question", autofocus=True)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="ac-ask")
                with gr.Accordion("Filters", open=False, elem_id="ac-filters"):
                    f_types = gr.CheckboxGroup(types, label="Source type", elem_id="ac-f-types")
                    f_person = gr.Dropdown([("anyone", "")] + [(n, n) for n in people_names], value="",
                                           label="Written by", elem_id="ac-f-person")
                    with gr.Row():
                        f_since = gr.Textbox(label="Since", placeholder="YYYY-MM-DD", elem_id="ac-f-since")
                        f_until = gr.Textbox(label="Until", placeholder="YYYY-MM-DD", elem_id="ac-f-until")
                comment = gr.Textbox(show_label=False, lines=1, elem_id="ac-comment", container=False,
                                     placeholder="Optional comment, sent with your thumbs up/down on an answer "
                                                 "or a ⚑ Wrong source report")
            with gr.Column(scale=2, min_width=300, elem_id="ac-side"):
                gr.HTML('<div class="ac-panel-title">Who to ask</div>', js_on_load=None)
                who = gr.HTML(people_html(None, None), elem_id="ac-who", js_on_load=None)
                gr.HTML('<div class="ac-panel-title">Sources</div>', js_on_load=None)
                sources = gr.HTML(sources_html([]), elem_id="ac-sources", js_on_load=JS_SOURCES)

        ins = [box, chat, turns, f_types, f_person, f_since, f_until]
        outs = [box, chat, turns, sources, who, header]
        for ev in (box.submit, send.click):
            ev(respond, ins, outs, api_visibility="private", concurrency_id="assistant", show_progress="minimal")
        chat.like(on_like, [turns, comment], [comment], api_visibility="private", concurrency_limit=4)
        sources.wrong_source(on_wrong, [turns, comment], [comment], api_visibility="private", concurrency_limit=4)
        chat.clear(lambda: ([], sources_html([]), people_html(None, None)), None, [turns, sources, who],
                   api_visibility="private", queue=False)
        gr.api(api_ask, api_name="ask", concurrency_id="assistant")
        gr.api(api_people, api_name="people", concurrency_id="assistant")
        demo.load(on_load, None, [header, f_types, f_person], api_visibility="private", concurrency_limit=None,
                  show_progress="hidden")
    demo.queue(default_concurrency_limit=LLM_CONCURRENCY if settings.llm_base_url else CONCURRENCY,
               max_size=QUEUE_MAX_SIZE)
    return demo


# ------------------------------------------------------------------------------------------
# serving

def _log(msg: str) -> None:
    print(f"askcolleague: {msg}", file=sys.stderr, flush=True)


def demo_corpus() -> Path:
    """`ingest/demo` of the repository (or of the working directory)."""
    for base in (ROOT, Path.cwd()):
        if (base / "ingest" / "demo").is_dir():
            return base / "ingest" / "demo"
    raise AskColleagueError("no index and no demo corpus (ingest/demo) to build one from")


def ensure_index(index_path: Path, settings: Settings) -> None:
    """Build the demo corpus into `index_path` when it holds no index yet, logging progress."""
    backend = backend_for(index_path)
    if backend.live_name(index_path) is not None:
        return
    corpus = demo_corpus()
    _log(f"no index in {backend.display(index_path)}; building one from the demo corpus {corpus} (takes a minute or two)…")
    report = build([corpus], index_path, settings=settings, progress=True, wait=True,
                   warn=lambda m: _log(f"warning: {m}"))
    _log(report.summary())


def serve(index_path: str | Path | None = None, host: str = "127.0.0.1", port: int = 7860,
          settings: Settings | None = None, block: bool = True, mcp: bool = True) -> gr.Blocks:
    """Build the index if missing, load and warm the Assistant, and serve the page on host:port, and with
    `mcp` the MCP tools (web/mcp.py) on streamable HTTP at /gradio_api/mcp/.

    With the users_file setting, the page and the API ask for a login (see create_app) or an API token
    (`Authorization: Bearer`), and the MCP endpoint for an API token.
    """
    settings = settings or Settings.load()
    path = backend_for(index_path or settings.index).location(index_path or settings.index)
    users = (Users(settings.users_file, grace_seconds=settings.users_file_grace_seconds)
             if settings.users_file else None)  # a bad file fails before any work
    ensure_index(path, settings)
    _log(f"loading {backend_for(path).display(path)} and warming up the model…")
    demo = create_app(path, settings, users=users)
    asst = get_assistant(path, settings)
    _log(status_line(asst.index.manifest))
    if users is not None:
        _log(f"login on: {len(users)} user(s) from {settings.users_file}")
        for u in users:
            if u.person and not asst.retriever.person_ids(u.person):
                _log(f"warning: user {u.username}: no person {u.person!r} in the index; they see only passages "
                     "without groups")
    # The MCP endpoint is the official SDK's streamable HTTP transport, served by the guard in front of
    # Gradio (after its token check), not Gradio's own MCP server (mcp_server=False): that one does not
    # apply Gradio's login to tool calls, calls queued endpoints through an HTTP loopback client that
    # cannot log in, and turns a dict result into its Python repr.
    mcp_app = None
    if mcp:

        mcp_app = HttpMCP(build_server(http_resolver(get_live(path, settings), users),
                                       concurrency=LLM_CONCURRENCY if settings.llm_base_url else CONCURRENCY), host)
        _log(f"MCP (streamable HTTP) at http://{host}:{port}/gradio_api/mcp/"
             + (" for API tokens (`askcolleague users token USERNAME`)" if users is not None else ""))
    # The guard (web/guard.py) goes in as the app's middleware: Starlette refuses middleware
    # added after the app has started, and launch() starts it. Uploads, monitoring, Gradio's MCP server
    # and server-side rendering (a Node proxy in front, which would hide client addresses) are off;
    # errors other than gr.Error reach the client without their message (show_error=False).
    guard = Middleware(Guard, login=users is not None, users=users, settings=settings, mcp=mcp_app)
    app_kwargs: dict[str, Any] = {"middleware": [guard]}
    if mcp_app is not None:
        app_kwargs["lifespan"] = mcp_app.lifespan
    demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block, css=CSS,
                theme=THEME, footer_links=["api"], show_error=False, quiet=False,
                auth=_auth(users) if users is not None else None,
                auth_message=_auth_message(settings) if users is not None else None,
                app_kwargs=app_kwargs, max_file_size=0, enable_monitoring=False, mcp_server=False,
                ssr_mode=False)
    return demo

"""The `askcolleague` command line: thin wrappers that parse input, call the library, print results."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click

from .errors import AskColleagueError
from .settings import Settings


def _index_option(f):
    return click.option("--index", "index", default=None, metavar="FOLDER|URI",
                        help="Index folder, or postgresql://… for a PostgreSQL index "
                             "[default: $ASKCOLLEAGUE_INDEX or indexes/default].")(f)


def _json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(f)


def _settings(**overrides) -> Settings:
    try:
        return Settings.load(**overrides)
    except AskColleagueError as e:
        raise click.ClickException(str(e)) from None


_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")  # an index location given as a URI (scheme://...)


def _index_path(index: str | None, settings: Settings) -> Path | str:
    """The index location given (or the setting's): a folder Path, or a URI as given, for its backend;
    a URI no backend serves is refused here, before any command could mistake it for a folder name."""
    location = str(index) if index else str(settings.index)
    if _URI.match(location):
        from .index import backend_for  # (lazy: the storage stack loads only for commands that use an index)

        return backend_for(location).location(location)
    return Path(location)


def _shown(location) -> str:
    """An index location for messages (a URI without its password)."""
    from .index import shown

    return shown(location)


def _dump(obj) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


class _Group(click.Group):
    """Turns library errors into one-line messages and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except AskColleagueError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Group)
@click.version_option(package_name="askcolleague")
def cli() -> None:
    """askcolleague: cited answers over your company's knowledge, and whom to ask next."""


# ------------------------------------------------------------------------------------------
@cli.group(cls=_Group)
def index() -> None:
    """Build, update and inspect an index."""


def _report(report, as_json: bool, strict: bool, quiet: bool = True) -> None:
    if as_json:
        _dump(report.to_dict())
    else:
        click.echo(report.summary(stages=not quiet), err=False)  # (seconds per phase unless --quiet)
        if report.version:
            click.echo(f"index: {report.index} ({report.version})")
    if strict and (report.skipped or report.kept):
        raise click.ClickException(f"--strict: {len(report.skipped) + len(report.kept)} file(s) could not be indexed")


@index.command("build")
@click.argument("sources", nargs=-1, type=click.Path(path_type=Path))
@click.option("--people", "people", multiple=True, type=click.Path(path_type=Path),
              help="People profiles file (YAML, JSON or CSV); repeatable.")
@_index_option
@click.option("--rebuild", is_flag=True, help="Re-embed everything (required to change the model).")
@click.option("--strict", is_flag=True, help="Exit non-zero if any file was skipped.")
@click.option("--wait", is_flag=True, help="Wait for another build/update to finish instead of failing.")
@click.option("--model", default=None, help="Local sentence-transformers model folder [default: bundled all-MiniLM-L6-v2].")
@click.option("--ray", "ray", default=None, metavar="ADDRESS|local",
              help="Parse, chunk and embed on a Ray cluster (its address, or `local` for one on this machine, bound "
                   "to 127.0.0.1); needs `pip install 'askcolleague[ray]'` on every node.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, and no seconds per phase in the summary.")
@_json_option
def index_build(sources, people, index, rebuild, strict, wait, model, ray, quiet, as_json) -> None:
    """Index SOURCES (folders, files, exports); with none, those in ingest/sources.yaml."""
    from .indexing.build import build  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings(model=model)
    report = build(list(sources), _index_path(index, settings), list(people), settings=settings,
                   rebuild=rebuild, wait=wait, command=sys.argv, ray=ray, **_progress(quiet))
    _report(report, as_json, strict, quiet)


def _progress(quiet: bool) -> dict:
    """A bar on a terminal; otherwise (a log, CI) a progress line with the time left every 30 s."""
    if quiet:
        return {"progress": False}
    if sys.stderr.isatty():
        return {"progress": True}
    return {"progress": False, "log": lambda line: click.echo(line, err=True)}


@index.command("update")
@_index_option
@click.option("--strict", is_flag=True, help="Exit non-zero if any file was skipped.")
@click.option("--wait", is_flag=True, help="Wait for another build/update to finish instead of failing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars, and no seconds per phase in the summary.")
@_json_option
def index_update(index, strict, wait, quiet, as_json) -> None:
    """Re-read the index's sources; embed only new or changed files/threads, drop deleted ones."""
    from .indexing.build import build  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings()
    report = build(None, _index_path(index, settings), settings=settings, update=True, wait=wait,
                   command=sys.argv, **_progress(quiet))
    if not report.changed and not as_json:
        click.echo("nothing changed")
    _report(report, as_json, strict, quiet)


@index.command("status")
@_index_option
@_json_option
def index_status(index, as_json) -> None:
    """Show what an index holds: model, counts, sources, when it was built."""
    from .index import backend_for  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings()
    path = _index_path(index, settings)
    m = backend_for(path).status(path)
    if as_json:
        _dump(m)
        return
    c = m["counts"]
    click.echo(f"index:    {m['index']} ({m['version']}, {m['bytes'] / 1e6:.1f} MB)")
    click.echo(f"built:    {m['built_at']}")
    click.echo(f"model:    {m['model']['id']} ({m['model']['dim']} dims, {m['model']['max_tokens']} tokens)")
    click.echo(f"chunker:  {m['chunker']['max_tokens']} tokens, overlap {m['chunker']['overlap']}")
    click.echo(f"contents: {c['sources']} sources, {c['documents']} documents, {c['chunks']} chunks, "
               f"{c['people']} people ({c['profiles']} with profiles)")
    cal = m.get("abstain_calibration")
    if cal:
        click.echo(f"abstain:  below cosine {cal['threshold']:.3f} (off-topic probes: median "
                   f"{cal.get('off_topic_q50', 0):.3f}, 95th percentile {cal.get('off_topic_q95', 0):.3f}; "
                   f"{cal['method']})")
    for r in m["roots"]:
        click.echo(f"source:   {r['given']}")
    for p in m["people_files"]:
        click.echo(f"people:   {p['given']}")
    if m["skipped"]:
        click.echo(f"skipped:  {len(m['skipped'])} file(s)")
        for s in m["skipped"]:
            click.echo(f"  {s['path']}: {s['reason']}")


@cli.command("forget")
@click.argument("person")
@_index_option
@click.option("--with-content", is_flag=True, help="Also remove everything they wrote (and feedback citing it).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def forget_cmd(person, index, with_content, yes) -> None:
    """Remove PERSON's profile (and with --with-content what they wrote) from the index, for good."""
    from .indexing.forget import forget  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings()
    path = _index_path(index, settings)
    what = "profile and everything they wrote" if with_content else "profile"
    if not yes:
        click.confirm(f"Remove {person}'s {what} from {_shown(path)}?", abort=True)
    report = forget(path, person, with_content=with_content, settings=settings)
    click.echo(f"forgot {person} ({what}); " + report.summary())


# ------------------------------------------------------------------------------------------
@cli.command("ask")
@click.argument("question")
@_index_option
@click.option("--k", "k", type=int, default=None, help="Passages retrieved [default: 8].")
@click.option("--mode", type=click.Choice(["hybrid", "dense", "bm25"]), default=None,
              help="Retrieval mode [default: hybrid].")
@click.option("--source-type", "source_type", multiple=True,
              type=click.Choice(["document", "post", "comment", "message", "profile"]),
              help="Only this kind of passage; repeatable.")
@click.option("--person", default=None, help="Only passages written by this person (name, alias or email).")
@click.option("--tag", multiple=True, help="Only passages of documents/threads with this tag; repeatable.")
@click.option("--since", default=None, help="Only passages dated on or after YYYY-MM-DD.")
@click.option("--until", default=None, help="Only passages dated on or before YYYY-MM-DD.")
@click.option("--as", "as_person", default=None,
              help="Answer as this person: only passages they may see (their groups) are used.")
@click.option("--no-llm", is_flag=True, help="Extractive answer even when an LLM is configured.")
@_json_option
def ask_cmd(question, index, k, mode, source_type, person, tag, since, until, as_person, no_llm, as_json) -> None:
    """Answer QUESTION with cited passages and the people to ask."""
    from .answer import Assistant  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings(k=k)
    asst = Assistant.from_index(_index_path(index, settings), settings=settings)
    ans = asst.ask(question, k=k, mode=mode, source_type=list(source_type) or None, person=person,
                   tag=list(tag) or None, since=since, until=until, as_person=as_person,
                   llm=False if no_llm else None)
    if as_json:
        _dump(ans.to_dict())
    else:
        click.echo(ans.render(), nl=False)


@cli.command("people")
@click.argument("words", nargs=-1)
@_index_option
@click.option("--k", "k", type=int, default=None, help="Passages used for the answer (people use many more).")
@click.option("--as", "as_person", default=None, help="Only evidence this person may see (their groups).")
@_json_option
def people_cmd(words, index, k, as_person, as_json) -> None:
    """`people list`: everyone in the index; `people "TOPIC"`: who knows about TOPIC, with evidence."""
    from .index import open_index  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings(k=k)
    path = _index_path(index, settings)
    if list(words) == ["list"]:
        from .answer import Assistant  # (lazy: `askcolleague --help` and each command load only what they need)

        groups = None
        if as_person:
            groups = Assistant.from_index(path, settings).groups_for(as_person)
        idx = open_index(path, settings)
        counts = idx.store.people_counts(groups)
        everyone = idx.store.people()
        shown = idx.store.visible_profiles([p.person_id for p in everyone], groups)
        rows = []
        for p in everyone:
            if p.person_id not in shown:
                if groups is not None and p.person_id not in counts:
                    continue  # neither their profile nor anything they wrote is visible to this asker
                if p.has_profile:  # a hidden profile: only what their visible writing says of them
                    from .answer import (  # (lazy: `askcolleague --help` and each command load only what they need)
                        as_seen,
                    )

                    p = as_seen(p, idx.store.authored_rows(p.person_id, groups, limit=5))
            d = p.to_dict()
            d["link"] = p.link()
            d["wrote"] = counts.get(p.person_id, {})
            rows.append(d)
        if as_json:
            _dump(rows)
            return
        for d in rows:
            wrote = ", ".join(f"{n} {t}{'s' if n != 1 else ''}" for t, n in sorted(d["wrote"].items())) or "nothing indexed"
            role = " · ".join(x for x in (d["title"], d["team"]) if x)
            flag = "" if d["has_profile"] else "  (no profile)"
            click.echo(f"{d['name']}{' — ' + role if role else ''}{flag}\n    {d['link'] or ''}  wrote: {wrote}")
        return
    if not words:
        raise click.UsageError('give a topic (askcolleague people "kubernetes upgrades") or `list`')
    from .answer import Assistant  # (lazy: `askcolleague --help` and each command load only what they need)

    asst = Assistant.from_index(path, settings=settings)
    people = asst.find_people(" ".join(words), as_person=as_person)
    if as_json:
        _dump([p.to_dict() for p in people])
        return
    if not people:
        click.echo("nobody found")
    for i, p in enumerate(people, 1):
        click.echo(p.render(i))


# --- eval ---
@cli.command("eval")
@_index_option
@click.option("--suite", type=click.Path(path_type=Path), default=Path("eval/demo.yaml"), show_default=True,
              help="Gold questions (YAML; format in eval/README.md).")
@click.option("--beir", "beir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Evaluate retrieval on a BEIR-layout folder (corpus.jsonl, queries.jsonl, qrels/test.tsv) instead.")
@click.option("--beir-index", "beir_index", default=None, metavar="FOLDER|URI",
              help="With --beir: build the dataset's index here (replacing what is there), e.g. a postgresql:// "
                   "URI to measure that backend [default: a temporary folder].")
@click.option("--modes", default="bm25,dense,hybrid", show_default=True, help="Comma-separated retrieval modes.")
@click.option("--k", "k", type=int, default=None, help="Passages per answer [default: 8].")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Report folder [default: eval/reports/<YYYY-MM-DD-HHMMSS>].")
@click.option("--abstain-threshold", "abstain_threshold", default=None,
              help="A number, or 'calibrated' (chosen on the suite) [default: the abstain_threshold setting].")
@click.option("--check", "check", type=click.Path(path_type=Path), default=None,
              help="Exit 1 when a metric is below its minimum in this file (e.g. eval/thresholds.yaml).")
@click.option("--llm", "use_llm", is_flag=True, help="Evaluate generated answers (needs an LLM configured).")
@_json_option
def eval_cmd(index, suite, beir, beir_index, modes, k, out, abstain_threshold, check, use_llm, as_json) -> None:
    """Measure retrieval, people, answers, abstention and latency on a gold suite (or a BEIR dataset)."""
    from .evaluation import (  # (lazy: `askcolleague --help` and each command load only what they need)
        check_thresholds, default_out_dir, evaluate, evaluate_beir, load_suite, load_thresholds,
    )

    settings = _settings(k=k)
    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    say = (lambda msg: click.echo(f"eval: {msg}", err=True))
    gate = load_thresholds(check) if check else None
    if beir:
        if not (beir / "corpus.jsonl").is_file():
            raise click.ClickException(f"{beir}: no corpus.jsonl; give a BEIR dataset folder")
        report = evaluate_beir(beir, mode_list, settings=settings, progress=say,
                               index_at=_index_path(beir_index, settings) if beir_index else None)
    else:
        from .answer import Assistant  # (lazy: `askcolleague --help` and each command load only what they need)

        s = load_suite(suite)
        if abstain_threshold is None and gate and gate.get("abstain_threshold") is not None:
            abstain_threshold = gate["abstain_threshold"]
        asst = Assistant.from_index(_index_path(index, settings), settings=settings)
        report = evaluate(asst, s, mode_list, k=k, abstain_threshold=abstain_threshold, llm=use_llm, progress=say)
    files = report.write(out or default_out_dir(), command=sys.argv)
    if as_json:
        _dump({**report.to_dict(), "files": {name: str(p) for name, p in files.items()}})
    else:
        click.echo(report.table())
        click.echo(f"report: {files['md'].parent}/ (report.md, report.html, report.json, runs)")
    if gate:
        below = check_thresholds(report, gate)
        if below:
            for line in below:
                click.echo(f"below threshold: {line}", err=True)
            raise click.ClickException(f"{len(below)} metric(s) below {check}")
        click.echo(f"all metrics at or above {check}", err=True)
# --- end eval ---


# --- web (serve, feedback) ---
@cli.command("serve")
@_index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 exposes it to the network).")
@click.option("--port", default=7860, type=int, show_default=True, help="Port to listen on.")
@click.option("--no-mcp", is_flag=True, help="Do not serve the MCP tools at /gradio_api/mcp/.")
def serve_cmd(index, host, port, no_mcp) -> None:
    """Serve the web chat, its API and the MCP tools (streamable HTTP at /gradio_api/mcp/); an index
    folder without an index gets the demo corpus built first."""
    from .web.app import serve  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings()
    serve(_index_path(index, settings), host=host, port=port, settings=settings, mcp=not no_mcp)


@cli.command("mcp")
@_index_option
@click.option("--as", "as_person", default=None,
              help="Answer as this person: only passages they may see (their groups).")
@click.option("--user", "user", default=None, help="Answer as this user of the users file (their person's groups).")
@click.option("--users-file", "users_file", type=click.Path(path_type=Path), default=None,
              help="Users file for --user [default: $ASKCOLLEAGUE_USERS_FILE].")
def mcp_cmd(index, as_person, user, users_file) -> None:
    """Speak MCP on stdin/stdout for desktop agents (Claude Desktop, Cursor, VS Code): the tools ask,
    search, find_people and get_passage. Without --as or --user, only passages without groups are used."""
    from .web.mcp import run_stdio  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings()
    run_stdio(_index_path(index, settings), settings=settings, as_person=as_person, user=user, users_file=users_file)


@cli.group(cls=_Group)
def feedback() -> None:
    """Feedback given in the web chat (stored with the index: <index>/feedback.sqlite, or in PostgreSQL)."""


@feedback.command("export")
@_index_option
@_json_option
def feedback_export(index, as_json) -> None:
    """Print every thumbs up/down and wrong-source report, oldest first."""
    from .feedback import export, render  # (lazy: `askcolleague --help` and each command load only what they need)

    rows = export(_index_path(index, _settings()))
    if as_json:
        _dump(rows)
    else:
        click.echo(render(rows) or "no feedback yet\n", nl=False)


@cli.group(cls=_Group)
def users() -> None:
    """Login accounts and API tokens (the users file: usernames, scrypt password hashes, the person each
    answers as, API token hashes)."""


def _users_file_option(f):
    return click.option("--users-file", "users_file", type=click.Path(path_type=Path), default=None,
                        help="Users file (YAML, or JSON for a .json name) [default: $ASKCOLLEAGUE_USERS_FILE].")(f)


def _users_path(users_file: Path | None) -> Path:
    path = users_file or _settings().users_file
    if not path:
        raise click.UsageError("give --users-file FILE or set ASKCOLLEAGUE_USERS_FILE")
    return Path(path)


@users.command("add")
@click.argument("username")
@click.option("--person", default=None,
              help="The people-profile name or email whose groups this user sees "
                   "[default: none: passages without groups only].")
@_users_file_option
@_index_option
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin (for scripts).")
@click.option("--replace", is_flag=True, help="Change the password and person of an existing user.")
def users_add(username, person, users_file, index, password_stdin, replace) -> None:
    """Add USERNAME to the users file, asking for the password (hashed with scrypt; never stored)."""
    from .web.auth import add_user  # (lazy: `askcolleague --help` and each command load only what they need)

    path = _users_path(users_file)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    add_user(path, username, password, person=person, replace=replace)
    click.echo(f"{'updated' if replace else 'added'} {username}"
               + (f" (answers as {person})" if person else " (no person: sees only passages without groups)")
               + f" in {path}")
    if person:
        _check_person(person, index)


def _check_person(person: str, index: Path | None) -> None:
    """Warn when the index does not know the person (the user would then see only public passages)."""
    from .index import backend_for, open_index  # (lazy: each command loads only what it needs)
    from .search import Retriever  # (lazy: `askcolleague --help` and each command load only what they need)

    settings = _settings()
    path = _index_path(index, settings)
    try:
        if backend_for(path).live_name(path) is None:
            return
        idx = open_index(path, settings)
    except AskColleagueError:
        return
    try:
        if not Retriever(idx).person_ids(person):
            click.echo(f"warning: no person {person!r} in {_shown(path)}; until there is, this user sees only passages "
                       "without groups (see `askcolleague people list`)", err=True)
    finally:
        idx.close()


@users.command("list")
@_users_file_option
@_json_option
def users_list(users_file, as_json) -> None:
    """List the users of the users file, the person each answers as, and their API tokens by id and
    creation date (never a hash or a token)."""
    from .web.auth import load_users  # (lazy: `askcolleague --help` and each command load only what they need)

    rows = [{"username": u.username, "person": u.person,
             **({"tokens": [{"id": t["id"], "created": t["created"]} for t in u.tokens]} if u.tokens else {})}
            for u in load_users(_users_path(users_file)).values()]
    if as_json:
        _dump(rows)
        return
    for r in rows:
        tokens = ", ".join(f"{t['id']} (created {t['created']})" for t in r.get("tokens", []))
        click.echo(f"{r['username']}\t{r['person'] or '(no person: public passages only)'}"
                   + (f"\ttokens: {tokens}" if tokens else ""))


@users.command("token")
@click.argument("username")
@click.option("--revoke", "revoke", default=None, metavar="ID", help="Revoke the token with this id (see `users list`).")
@_users_file_option
def users_token(username, revoke, users_file) -> None:
    """Create an API token for USERNAME (for the gradio API and MCP: `Authorization: Bearer <token>`),
    printed once as the last line; only its hash is stored. With --revoke ID, revoke one instead."""
    from .web.auth import (  # (lazy: `askcolleague --help` and each command load only what they need)
        create_token, revoke_token,
    )

    path = _users_path(users_file)
    if revoke:
        revoke_token(path, username, revoke.strip())
        click.echo(f"revoked token {revoke.strip()} of {username} in {path}; a running server refuses it from now on")
        return
    tid, token = create_token(path, username)
    click.echo(f"created token {tid} for {username} in {path} (only its hash is stored: copy the token now, "
               "it is not shown again):")
    click.echo(token)


@users.command("remove")
@click.argument("username")
@_users_file_option
def users_remove(username, users_file) -> None:
    """Remove USERNAME from the users file; a running server refuses their next request."""
    from .web.auth import remove_user  # (lazy: `askcolleague --help` and each command load only what they need)

    path = _users_path(users_file)
    remove_user(path, username)
    click.echo(f"removed {username} from {path}")
# --- end web ---


def main() -> None:
    cli(prog_name="askcolleague")


if __name__ == "__main__":
    main()

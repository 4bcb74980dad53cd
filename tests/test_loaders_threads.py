"""Thread loaders (WXR, Slack, mbox, JSONL): who is credited for each block, quotes, safety, fuzzing."""
from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from askcolleague.errors import LoadError
from askcolleague.loaders import SourceSpec, kind_of, load_source
from askcolleague.loaders import jsonl, mbox, slack, wxr
from askcolleague.loaders.threads import first_words, html_to_text
from askcolleague.models import AuthorRef

FIX = Path(__file__).parent / "fixtures" / "threads"
MAX = 10_000_000

DANA_WP = AuthorRef(name="Dana Lee", email="dana.lee@acme.example")
ANN = AuthorRef(name="Ann Smith", email="ann.smith@acme.example")
RAJ = AuthorRef(name="Raj Patel", email="raj@acme.example")


def by_unit(doc):
    return {b.unit_id: b for b in doc.blocks}


def all_text(docs):
    return "\n".join(b.text for d in docs for b in d.blocks)


def one_author_each(docs):
    return all(len(b.authors) == 1 for d in docs for b in d.blocks)


# ---------------------------------------------------------------- WXR

def test_wxr_credits_each_comment_to_its_author():
    docs = {d.doc_id: d for d in wxr.load(FIX / "blog.xml", "blog.xml", MAX)}
    assert set(docs) == {"blog.xml#post-101", "blog.xml#post-102", "blog.xml#post-106"}
    doc = docs["blog.xml#post-101"]
    assert (doc.title, doc.source, doc.source_type) == ("Upgrading to Kubernetes 1.30", "blog.xml", "post")
    assert doc.authors == [DANA_WP] and doc.date == "2024-04-15T09:30:00"
    assert doc.url == "https://blog.acme.example/2024/04/k8s-130/"
    assert doc.tags == ["Infrastructure", "Kubernetes"] and doc.groups == []
    assert one_author_each([doc])
    units = by_unit(doc)
    assert list(units) == ["post-101", "comment-7", "comment-8:quote", "comment-8", "comment-13"]
    post = units["post-101"]
    assert post.kind == "post" and post.authors == [DANA_WP] and post.reply_to is None
    assert "Drain nodes one at a time & watch the PodDisruptionBudgets." in post.text
    assert "\n\n- Back up etcd first\n- Upgrade the control plane" in post.text
    ann = units["comment-7"]
    assert ann.kind == "comment" and ann.authors == [ANN] and ann.reply_to == "Dana Lee"
    assert ann.url == "https://blog.acme.example/2024/04/k8s-130/#comment-7" and ann.date == "2024-04-15T10:00:00"
    assert ann.context == 'Comment by Ann Smith replying to Dana Lee on "Upgrading to Kubernetes 1.30"'
    assert ann.text == "Did the kube-proxy iptables mode change bite anyone?\n\nWe had to restart coredns twice."
    raj = units["comment-8"]
    assert raj.authors == [RAJ] and raj.reply_to == "Ann Smith"
    assert raj.text == "Same here, the fix is to bump the coredns memory limit to 256Mi."
    quote = units["comment-8:quote"]
    assert quote.authors == [ANN] and quote.quoted_from == "comment-7" and quote.kind == "comment"
    assert quote.text == "We had to restart coredns twice." and quote.context == "Quoted by Raj Patel from Ann Smith"
    dana = units["comment-13"]
    assert dana.authors == [DANA_WP] and dana.reply_to == "Raj Patel"


def test_wxr_skips_spam_trash_pingbacks_pending_drafts_and_attachments():
    docs = wxr.load(FIX / "blog.xml", "blog.xml", MAX)
    text = all_text(docs)
    for word in ("SPAMWORD", "TRASHWORD", "PINGWORD", "PENDINGWORD", "DRAFTWORD", "ATTACHWORD"):
        assert word not in text
    names = {a.name for d in docs for b in d.blocks for a in b.authors}
    assert names == {"Dana Lee", "Ann Smith", "Raj Patel", "Mina Kim"}


def test_wxr_private_post_is_kept_with_a_group_and_pages_are_kept():
    docs = {d.doc_id: d for d in wxr.load(FIX / "blog.xml", "blog.xml", MAX)}
    private = docs["blog.xml#post-102"]
    assert private.groups == ["private"]
    assert private.authors == [AuthorRef(name="Mina Kim", email="mina.kim@acme.example")]  # first + last name
    page = docs["blog.xml#post-106"]
    assert page.meta["post_type"] == "page" and page.blocks[0].text == "We run the clusters.\n\nAsk us in #infra."


@pytest.mark.parametrize("name", ["wxr_xxe.xml", "wxr_laughs.xml"])
def test_wxr_entities_are_refused_never_expanded(name):
    with pytest.raises(LoadError, match="entities/DTD.*refused for safety") as e:
        wxr.load(FIX / name, name, MAX)
    assert "lollol" not in str(e.value) and "root:" not in str(e.value)


def test_wxr_malformed_and_foreign_xml():
    with pytest.raises(LoadError, match=r"malformed XML at line 4"):
        wxr.load(FIX / "wxr_malformed.xml", "x.xml", MAX)
    with pytest.raises(LoadError, match=r"not a WordPress export \(WXR\)"):
        wxr.load(FIX / "not_wxr.xml", "x.xml", MAX)


# ---------------------------------------------------------------- Slack

DANA_SL = AuthorRef(name="Dana Lee", email="dana.lee@acme.example", handle="slack:U01DANA")
ANN_SL = AuthorRef(name="Ann Smith", email="ann.smith@acme.example", handle="slack:U02ANN")
RAJ_SL = AuthorRef(name="Raj P", email="raj@acme.example", handle="slack:U03RAJ")
THREAD = "slack#infra/1711965600.000200"


def zip_folder(folder: Path, dest: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                z.write(p, prefix + p.relative_to(folder).as_posix())
    return dest


def check_slack(docs):
    docs = {d.doc_id: d for d in docs}
    assert set(docs) == {THREAD, "slack#infra/1712055600.000700", "slack#secret-ops/1712138400.000100"}
    doc = docs[THREAD]
    assert doc.title == "#infra: Node drain timeout during upgrade?" and doc.source_type == "message"
    assert doc.authors == [DANA_SL] and doc.date == "2024-04-01T10:00:00" and doc.groups == []
    assert one_author_each(docs.values())
    units = by_unit(doc)
    assert list(units) == ["1711965600.000200", "1711965900.000300", "1712052000.000500:quote",
                           "1712052000.000500", "1712052300.000600:quote"]
    assert units["1711965600.000200"].authors == [DANA_SL] and units["1711965600.000200"].reply_to is None
    ann = units["1711965900.000300"]
    assert ann.authors == [ANN_SL] and ann.reply_to == "Dana Lee" and ann.kind == "message"
    assert ann.text == ("@Dana Lee set `--timeout=10m` on kubectl drain & relax the PDB first. See the drain runbook "
                        "(https://wiki.acme.example/runbooks/drain) and ask in #infra.")
    raj = units["1712052000.000500"]
    assert raj.authors == [RAJ_SL] and raj.reply_to == "Dana Lee"
    assert raj.text == "That worked for us, but remember to restore it afterwards <3"
    assert "relax the PDB" not in raj.text
    # The quote is found in Ann's earlier message, not the thread parent.
    quote = units["1712052000.000500:quote"]
    assert quote.authors == [ANN_SL] and quote.quoted_from == "1711965900.000300"
    assert quote.text == "relax the PDB first" and quote.context == "Quoted by Raj P from Ann Smith"
    # A reply that is only a quote has no block of its own.
    assert "1712052300.000600" not in units
    assert units["1712052300.000600:quote"].authors == [DANA_SL]
    assert docs["slack#infra/1712055600.000700"].blocks[0].text == "Reminder: cluster upgrade window is Friday 18:00 @here"
    private = docs["slack#secret-ops/1712138400.000100"]
    assert private.groups == ["slack:secret-ops"] and [m["handle"] for m in private.meta["members"]] == ["slack:U01DANA", "slack:U03RAJ"]
    text = all_text(docs.values())
    assert "BOTWORD" not in text and "has joined" not in text and "has left" not in text


def test_slack_folder():
    check_slack(slack.load(FIX / "slack", "slack", MAX))


@pytest.mark.parametrize("prefix", ["", "Acme Slack export/"])
def test_slack_zip_gives_the_same_docs_as_the_folder(tmp_path, prefix):
    path = zip_folder(FIX / "slack", tmp_path / "slack.zip", prefix)
    check_slack(slack.load(path, "slack", MAX))
    assert not (tmp_path / "users.json").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["slack.zip"]


@pytest.mark.parametrize("evil", ["../evil.json", "infra/../../evil.json", "/etc/evil.json"])
def test_slack_zip_slip_is_refused(tmp_path, evil):
    path = zip_folder(FIX / "slack", tmp_path / "slack.zip")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr(evil, "[]")
    with pytest.raises(LoadError, match="zip slip") as e:
        slack.load(path, "slack", MAX)
    assert evil in str(e.value)


def test_slack_zip_bomb_is_refused(tmp_path):
    path = zip_folder(FIX / "slack", tmp_path / "slack.zip")
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("infra/2024-04-09.json", b"[" + b" " * 20_000_000 + b"]")
    assert path.stat().st_size < 200_000
    with pytest.raises(LoadError, match=r"zip expands to more than 2 MB \(zip bomb\?\)"):
        slack.load(path, "slack", 200_000)


def test_slack_bad_day_file_and_not_slack(tmp_path):
    folder = shutil.copytree(FIX / "slack", tmp_path / "export")
    (folder / "infra" / "2024-04-05.json").write_text("[{\"ts\": ", encoding="utf-8")
    with pytest.raises(LoadError, match=r"^infra/2024-04-05\.json is not valid JSON"):
        slack.load(folder, "export", MAX)
    other = tmp_path / "photos.zip"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("cat.jpg", b"\xff\xd8")
    with pytest.raises(LoadError, match="not a Slack export"):
        slack.load(other, "photos.zip", MAX)
    (tmp_path / "junk.zip").write_bytes(b"not a zip at all")
    with pytest.raises(LoadError, match="not a valid .zip"):
        slack.load(tmp_path / "junk.zip", "junk.zip", MAX)


# ---------------------------------------------------------------- mbox

DANA_MAIL = AuthorRef(name="Lee, Dana", email="dana.lee@acme.example")
MINA_MAIL = AuthorRef(email="mina.kim@acme.example")


def test_mbox_threads_authors_and_quotes():
    docs = {d.doc_id: d for d in mbox.load(FIX / "lists.mbox", "lists.mbox", MAX)}
    drill = docs["lists.mbox#drill-1@acme.example"]
    assert drill.title == "Postgres failover drill – results" and drill.source_type == "message"
    assert drill.authors == [DANA_MAIL] and drill.date == "2024-05-06T09:00:00"
    assert one_author_each(docs.values())
    units = by_unit(drill)
    assert list(units) == ["drill-1@acme.example", "drill-2@acme.example:quote", "drill-2@acme.example",
                           "drill-3@acme.example:quote", "drill-3@acme.example", "drill-4@acme.example:quote",
                           "drill-4@acme.example"]
    root = units["drill-1@acme.example"]
    assert root.text.endswith("From the logs, the WAL replay was the slow part.")  # '>From ' unescaped, no quote
    assert "SIGWORD" not in all_text(docs.values())
    ann = units["drill-2@acme.example"]
    assert ann.authors == [ANN] and ann.reply_to == "Lee, Dana" and ann.kind == "message"
    assert ann.text == "That's inside our 60 second SLO. Did pgbouncer reconnect on its own?"  # "On … wrote:" dropped
    q = units["drill-2@acme.example:quote"]
    assert q.authors == [DANA_MAIL] and q.quoted_from == "drill-1@acme.example"
    assert q.text == "The replica took 45 seconds to promote."
    raj = units["drill-3@acme.example"]
    assert raj.authors == [RAJ] and raj.reply_to == "Ann Smith"
    assert raj.text == "Yes, after one retry. Café analogy: the barista changed, the queue stayed."
    assert units["drill-3@acme.example:quote"].authors == [ANN]
    mina = units["drill-4@acme.example"]  # HTML-only, References without In-Reply-To
    assert mina.authors == [MINA_MAIL] and mina.reply_to == "Raj Patel"
    assert mina.text == "I will add the retry setting to the runbook.\n\nThanks all!"
    assert units["drill-4@acme.example:quote"].authors == [RAJ]
    assert units["drill-4@acme.example:quote"].text == "Yes, after one retry."
    assert mina.context == 'Email by mina.kim@acme.example replying to Raj Patel on "Postgres failover drill – results"'
    assert "HTMLWORD" not in all_text(docs.values())


def test_mbox_subject_fallback_and_unattributable_quote():
    docs = mbox.load(FIX / "lists.mbox", "lists.mbox", MAX)
    lunch = next(d for d in docs if d.title == "Lunch talk on eBPF")
    assert [b.authors[0].name for b in lunch.blocks] == ["Ann Smith", "Lee, Dana"]
    assert lunch.blocks[1].reply_to == "Ann Smith" and lunch.doc_id.startswith("lists.mbox#nomsgid-")
    vendor = next(d for d in docs if d.doc_id == "lists.mbox#vendor-2@acme.example")
    assert vendor.title == "Vendor contract"
    assert [b.text for b in vendor.blocks] == ["We should push back to one year."]
    assert "ORPHANQUOTE" not in all_text(docs)
    assert len(docs) == 3


def test_mbox_without_messages(tmp_path):
    p = tmp_path / "empty.mbox"
    p.write_text("just some text\nwithout separators\n")
    with pytest.raises(LoadError, match="no mail messages found"):
        mbox.load(p, "empty.mbox", MAX)


# ---------------------------------------------------------------- JSONL

def test_jsonl_nested_comments_and_quotes():
    docs = {d.doc_id: d for d in jsonl.load(FIX / "forum.jsonl", "forum.jsonl", MAX)}
    assert set(docs) == {"forum.jsonl#t-42", "forum.jsonl#3"}  # missing id → line number
    doc = docs["forum.jsonl#t-42"]
    assert doc.title == "Terraform state locking with DynamoDB" and doc.tags == ["terraform", "aws"]
    assert doc.authors == [DANA_WP] and doc.url == "https://forum.acme.example/t/42" and doc.source_type == "post"
    assert one_author_each([doc])
    units = by_unit(doc)
    assert list(units) == ["post", "comment-c1", "comment-c2:quote", "comment-c2", "comment-c3:quote", "comment-2"]
    assert units["post"].text == "Our terraform apply runs keep colliding.\n\nShould we turn on state locking?"
    assert units["comment-c1"].authors == [ANN] and units["comment-c1"].reply_to == "Dana Lee"
    raj = units["comment-c2"]
    assert raj.authors == [AuthorRef(name="Raj Patel")] and raj.reply_to == "Ann Smith"
    assert raj.text == "Careful: on-demand billing spikes during big refactors."
    assert units["comment-c2:quote"].authors == [ANN] and units["comment-c2:quote"].text == "It costs almost nothing."
    # Mina's comment is only a quote of Raj: it is credited to Raj, and Mina gets no block.
    assert units["comment-c3:quote"].authors == [AuthorRef(name="Raj Patel")]
    assert units["comment-c3:quote"].quoted_from == "comment-c2"
    assert all(b.authors[0].email != "mina.kim@acme.example" for b in doc.blocks)
    assert units["comment-2"].reply_to == "Dana Lee" and units["comment-2"].date == "2024-03-02"


def test_jsonl_errors(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"id": 1, "body": "ok"}\n{"id": 2, "body": oops}\n')
    with pytest.raises(LoadError, match=r"^line 2 is not valid JSON .*; fix the line$"):
        jsonl.load(p, "t.jsonl", MAX)
    p.write_text('[1, 2]\n')
    with pytest.raises(LoadError, match="line 1 is not a JSON object"):
        jsonl.load(p, "t.jsonl", MAX)
    comment: dict = {"author": "Deep", "body": "bottom"}
    for _ in range(60):
        comment = {"author": "Deep", "body": "x", "comments": [comment]}
    p.write_text(json.dumps({"id": "deep", "body": "top", "comments": [comment]}) + "\n")
    with pytest.raises(LoadError, match="nested more than 50 levels"):
        jsonl.load(p, "t.jsonl", MAX)


# ---------------------------------------------------------------- helpers and the load_source wrapper

def test_html_to_text_and_first_words():
    assert html_to_text("<p>a &amp; b</p><script>x()</script><p>c<br>d</p>") == "a & b\n\nc\nd"
    assert html_to_text("<div>mine</div><blockquote><p>theirs</p><p>more</p></blockquote>") == "mine\n\n> theirs\n\n> more"
    assert first_words("Node drain timeout during upgrade? We see pods stuck.") == "Node drain timeout during upgrade?"
    assert first_words("one two three four", 2) == "one two …"


@pytest.mark.parametrize("name", ["blog.xml", "slack", "lists.mbox", "forum.jsonl"])
def test_load_source_dispatches_fixtures(name):
    path = FIX / name
    docs = load_source(SourceSpec(path, name, kind_of(path)), MAX)
    assert docs and all(d.doc_id.startswith(f"{name}#") and d.source == name for d in docs)


def _slack_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


PREFIXES = {
    "wxr": [b"", b'<?xml version="1.0"?><rss xmlns:wp="http://wordpress.org/export/1.2/"><channel><item>'],
    "mbox": [b"", b"From a@b Mon May  6 09:00:00 2024\nFrom: A <a@b>\nSubject: Re: x\nMessage-ID: <1@b>\n\n"],
    "jsonl": [b"", b'{"id": 1, "author": "A", "body": "x", "comments": [{"body": "> '],
    "slack": [b""],
}
SUFFIX = {"wxr": ".xml", "mbox": ".mbox", "jsonl": ".jsonl", "slack": ".zip"}


@pytest.mark.parametrize("kind", sorted(PREFIXES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_bytes_give_docs_or_a_load_error(tmp_path, kind, data):
    raw = data.draw(st.sampled_from(PREFIXES[kind])) + data.draw(st.binary(max_size=400))
    if kind == "slack" and data.draw(st.booleans()):  # a real zip whose members are random
        raw = _slack_zip({"users.json": data.draw(st.binary(max_size=80)) or b"[]", "channels.json": b"[]",
                          "c/2024-01-01.json": raw})
    path = tmp_path / f"fuzz{SUFFIX[kind]}"
    path.write_bytes(raw)
    try:
        docs = load_source(SourceSpec(path, path.name, kind), MAX)
    except LoadError as e:
        assert "\n" not in str(e) and "could not parse" not in str(e)  # the loader raised it itself
    else:
        assert all(d.blocks for d in docs)

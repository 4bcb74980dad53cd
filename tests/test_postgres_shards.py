"""A sharded PostgreSQL index: a coordinator and two shards (three real servers on unix sockets), the
chunks hash-partitioned onto the shards through postgres_fdw. In exact mode the sharded top-k equals
the unsharded one, filters and the distance ordering run on the shards, and a dropped version leaves
nothing behind on them."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from fakes import FakeEmbedder

from askcolleague.errors import ConfigError
from askcolleague.index import open_index
from askcolleague.indexing.build import build
from askcolleague.search import Filters, Retriever


def _sql(uri: str, sql: str):
    import psycopg

    from askcolleague.index.postgres import Location

    with psycopg.connect(Location.parse(uri).conninfo, autocommit=True) as c:
        cur = c.execute(sql)
        return cur.fetchall() if cur.description else None


@pytest.fixture(scope="module")
def cluster(pg_server, tmp_path_factory):
    """(coordinator URI, [shard URIs]): the session's server is the coordinator; two more are shards,
    each registered on it as a postgres_fdw server with `extensions 'vector'` and a user mapping."""
    import pgserver

    shards = [pgserver.get_server(tmp_path_factory.mktemp(f"shard{i}"), cleanup_mode="delete") for i in range(2)]
    uris = [s.get_uri() for s in shards]
    _sql(pg_server, "CREATE EXTENSION IF NOT EXISTS postgres_fdw")
    for i, u in enumerate(uris):
        host = parse_qs(urlsplit(u).query)["host"][0]
        _sql(pg_server, f"DROP SERVER IF EXISTS shard{i} CASCADE")
        _sql(pg_server, f"CREATE SERVER shard{i} FOREIGN DATA WRAPPER postgres_fdw "
                        f"OPTIONS (host '{host}', dbname 'postgres', extensions 'vector')")
        _sql(pg_server, f"CREATE USER MAPPING FOR CURRENT_USER SERVER shard{i} OPTIONS (user 'postgres')")
    try:
        yield pg_server, uris
    finally:
        for s in shards:
            s.cleanup()


def _kb(root: Path, n: int = 120) -> Path:
    root.mkdir(parents=True)
    topics = ["payroll", "kubernetes", "laptops", "travel", "security", "firmware"]
    for i in range(n):
        t = topics[i % len(topics)]
        groups = "groups: [finance]\n" if i % 5 == 2 else ""
        (root / f"n{i:03d}.md").write_text(
            f"---\ntitle: {t.title()} {i}\nauthor: Person {i % 7}\n{groups}---\n\n# {t.title()}\n\n"
            f"Notes on {t} number {i}: {' '.join(topics[(i + j) % 6] for j in range(i % 9 + 3))}.\n")
    return root


def test_sharded_top_k_equals_the_unsharded_one(cluster, tmp_path):
    coordinator, shard_uris = cluster
    kb = _kb(tmp_path / "kb")
    e = FakeEmbedder()
    plain = coordinator + "&schema=unsharded"
    sharded = coordinator + "&schema=sharded&shards=shard0,shard1"
    build([kb], plain, embedder=e, warn=lambda m: None)
    rep = build([kb], sharded, embedder=e, warn=lambda m: None)
    a, b = open_index(plain, embedder=e), open_index(sharded, embedder=e)
    # the chunks live on the shards, split by hash(id); the coordinator holds none itself
    v = f"sharded_{rep.version}"
    counts = [_sql(u, f"SELECT count(*) FROM {v}.chunks")[0][0] for u in shard_uris]
    assert all(c > 10 for c in counts) and sum(counts) == rep.chunks == b.store.count("chunks")
    assert b.manifest["shards"][0]["server"] == "shard0"
    rng = np.random.default_rng(1)
    filters = [None, Filters(groups=[]), Filters(groups=["finance"]), Filters(person="Person 3", groups=["finance"])]
    for f in filters:
        sa = a.store.select(f, a.store.person_ids(f.person) if f and f.person else None)
        sb = b.store.select(f, b.store.person_ids(f.person) if f and f.person else None)
        for _ in range(5):
            q = rng.normal(size=e.dim).astype(np.float32)
            q /= np.linalg.norm(q)
            for k in (1, 10, 50):
                assert b.vectors.search(q, k, sb) == a.vectors.search(q, k, sa)
        for query in ("payroll kubernetes", "laptops travel security"):
            assert [h.id for h in Retriever(b).search(query, k=8, filters=f)] == \
                   [h.id for h in Retriever(a).search(query, k=8, filters=f)]
    # the WHERE clause and the distance ordering are pushed down to each shard
    qv = "[" + ",".join(["0.1"] * e.dim) + "]"
    plan = "\n".join(r[0] for r in _sql(sharded, f"EXPLAIN VERBOSE SELECT c.id FROM {v}.chunks c WHERE c.groups && "
                                                 f"'{{finance}}'::text[] ORDER BY c.embedding <#> '{qv}'::halfvec LIMIT 5"))
    remote = [ln for ln in plan.splitlines() if "Remote SQL" in ln]
    assert len(remote) == 2 and all("ORDER BY" in ln and "groups &&" in ln for ln in remote), plan


def test_a_new_version_drops_the_old_ones_on_the_shards(cluster, tmp_path):
    coordinator, shard_uris = cluster
    kb = _kb(tmp_path / "kb", n=30)
    uri = coordinator + "&schema=rolling&shards=shard0,shard1"
    e = FakeEmbedder()
    v1 = build([kb], uri, embedder=e, warn=lambda m: None).version
    v2 = build([kb], uri, embedder=e, rebuild=True, warn=lambda m: None).version
    v3 = build([kb], uri, embedder=e, rebuild=True, warn=lambda m: None).version
    for u in shard_uris:
        left = {r[0] for r in _sql(u, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rolling_v%'")}
        assert left == {f"rolling_{v2}", f"rolling_{v3}"} and f"rolling_{v1}" not in left


def test_a_shard_server_that_is_not_defined_is_one_clear_error(cluster, tmp_path):
    coordinator, _ = cluster
    with pytest.raises(ConfigError, match="no postgres_fdw server 'nowhere'.*CREATE SERVER nowhere"):
        build([_kb(tmp_path / "kb", n=3)], coordinator + "&schema=bad&shards=shard0,nowhere",
              embedder=FakeEmbedder(), warn=lambda m: None)
    with pytest.raises(ConfigError, match="names the coordinator's postgres_fdw servers"):
        build([tmp_path / "kb"], coordinator + "&schema=bad&shards=shard0,shard0", embedder=FakeEmbedder(),
              warn=lambda m: None)

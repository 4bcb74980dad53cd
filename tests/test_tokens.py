"""API tokens: created once, stored only as a hash beside their user, listed by id and date, revoked at once."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from askcolleague.cli import cli
from askcolleague.errors import ConfigError
from askcolleague.web.auth import Users, add_user, create_token, load_users, revoke_token, token_hash, token_id
from askcolleague.web.guard import LoginLimiter, bearer_token


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users.yaml"
    add_user(path, "dana", "dana-pw", person="Dana Lee")
    add_user(path, "sam", "sam-pw")
    return path


def test_cli_token_prints_it_once_as_the_last_line_and_stores_only_its_hash(users_file):
    r = CliRunner().invoke(cli, ["users", "token", "dana", "--users-file", str(users_file)])
    assert r.exit_code == 0, r.output
    token = r.output.splitlines()[-1]
    assert re.fullmatch(r"ac_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", token)
    text = users_file.read_text()
    assert token not in text and token[len("ac_12345678_"):] not in text and token_hash(token) in text
    (entry,) = load_users(users_file)["dana"].tokens
    assert entry["id"] == token_id(token) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", entry["created"])
    assert Users(users_file).check_token(token).username == "dana"


def test_users_list_shows_ids_and_dates_never_values(users_file):
    tid, token = create_token(users_file, "dana")
    runner = CliRunner()
    r = runner.invoke(cli, ["users", "list", "--users-file", str(users_file)])
    assert r.exit_code == 0 and f"tokens: {tid} (created 20" in r.output
    assert token not in r.output and "sha256$" not in r.output and "scrypt$" not in r.output
    rows = json.loads(runner.invoke(cli, ["users", "list", "--users-file", str(users_file), "--json"]).output)
    assert rows[0]["tokens"] == [{"id": tid, "created": load_users(users_file)["dana"].tokens[0]["created"]}]
    assert rows[1] == {"username": "sam", "person": None}  # no "tokens" key without tokens


def test_revoke_wrong_and_malformed_tokens_are_refused(users_file):
    users = Users(users_file, grace_seconds=0)
    t1, token1 = create_token(users_file, "dana")
    _, token2 = create_token(users_file, "dana")
    assert users.check_token(token1).username == "dana"
    wrong = token1[:-1] + ("A" if token1[-1] != "A" else "B")
    for bad in (wrong, "", None, "ac_zz_" + "x" * 43, "Bearer " + token1, token1 + "x"):
        assert users.check_token(bad) is None, bad
    r = CliRunner().invoke(cli, ["users", "token", "dana", "--revoke", t1, "--users-file", str(users_file)])
    assert r.exit_code == 0 and f"revoked token {t1}" in r.output
    assert users.check_token(token1) is None and users.check_token(token2).username == "dana"  # re-read at once
    with pytest.raises(ConfigError, match=f"user 'dana' has no token '{t1}'; see `askcolleague users list`"):
        revoke_token(users_file, "dana", t1)
    r = CliRunner().invoke(cli, ["users", "token", "nobody", "--users-file", str(users_file)])
    assert r.exit_code == 1 and "no user 'nobody'" in r.output


def test_a_new_password_keeps_tokens_and_a_removed_user_loses_them(users_file):
    from askcolleague.web.auth import remove_user

    _, token = create_token(users_file, "sam")
    add_user(users_file, "sam", "new-pw", replace=True)
    users = Users(users_file, grace_seconds=0)
    assert users.check_token(token).username == "sam"
    remove_user(users_file, "sam")
    assert users.check_token(token) is None


@pytest.mark.parametrize("tokens, message", [
    ("nope", "tokens must be a list"),
    ([{"id": "abc", "hash": "sha256$" + "0" * 64, "created": "x"}], "token id 'abc' is not 8 hex digits"),
    ([{"id": "0123abcd", "hash": "md5$00", "created": "x"}], "hash is not a sha256"),
    ([{"id": "0123abcd", "hash": "sha256$" + "0" * 64}], "exactly id, hash and created"),
    ([{"id": "0123abcd", "hash": "sha256$" + "0" * 64, "created": "x"},
      {"id": "0123abcd", "hash": "sha256$" + "1" * 64, "created": "y"}], "appears twice"),
])
def test_a_bad_tokens_entry_names_the_user_and_the_fix(users_file, tokens, message):
    import yaml

    rows = yaml.safe_load(users_file.read_text())
    rows[0]["tokens"] = tokens
    users_file.write_text(yaml.safe_dump(rows))
    with pytest.raises(ConfigError, match=re.escape(message)) as e:
        load_users(users_file)
    assert "user 'dana'" in str(e.value) and "\n" not in str(e.value)


def test_bearer_header_parsing():
    def scope(v):
        return {"type": "http", "headers": [(b"authorization", v.encode())]}
    assert bearer_token(scope("Bearer abc")) == "abc" and bearer_token(scope("bearer  abc ")) == "abc"
    assert bearer_token(scope("Basic abc")) is None and bearer_token(scope("Bearer ")) is None
    assert bearer_token({"type": "http", "headers": []}) is None


def test_bad_tokens_lock_their_id_and_address_but_checks_in_flight_do_not():
    """Tokens use blocked()/record(): a valid token used by many calls at once is never refused for
    calls in flight (begin() would count them), while bad ones lock out like failed logins."""
    now = [0.0]
    lim = LoginLimiter(max_failures=3, max_address_failures=5, window=60, lockout=10, clock=lambda: now[0],
                       log=lambda m: None)
    for _ in range(10):
        assert lim.blocked("token:good", "1.2.3.4") == 0
    for i in range(3):
        assert lim.blocked("token:aaaa0000", "1.2.3.4") == 0
        lim.record("token:aaaa0000", "1.2.3.4", False)
    assert lim.blocked("token:aaaa0000", "1.2.3.4") == 10 and lim.blocked("token:aaaa0000", "5.6.7.8") == 10
    assert lim.blocked("token:good", "1.2.3.4") == 0  # the address has 3 of its 5
    lim.record("token:bbbb0000", "1.2.3.4", False)
    lim.record("token:cccc0000", "1.2.3.4", False)
    assert lim.blocked("token:good", "1.2.3.4") == 10  # the address is locked now
    now[0] = 11
    assert lim.blocked("token:good", "1.2.3.4") == 0

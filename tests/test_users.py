"""Web login accounts: scrypt hashes, the users file loader and its errors, `askcolleague users`."""
from __future__ import annotations

import json
import os

import pytest
import yaml
from click.testing import CliRunner

from askcolleague.cli import cli
from askcolleague.errors import ConfigError
from askcolleague.web.auth import Users, add_user, hash_password, load_users, remove_user, verify_password

H = hash_password("correct horse", n=2**10)  # a cheap hash for loader tests


def test_hash_is_self_describing_salted_and_verifies():
    h = hash_password("s3cret pässword")
    algo, n, r, p, salt, digest = h.split("$")
    assert (algo, n, r, p) == ("scrypt", "32768", "8", "1") and salt and digest
    assert verify_password("s3cret pässword", h)
    assert not verify_password("s3cret password", h) and not verify_password("", h)
    assert hash_password("s3cret pässword") != h  # a fresh salt every time
    assert "s3cret" not in h


@pytest.mark.parametrize("bad", ["", "plain text", "scrypt$16384$8$1$c2FsdA==", "pbkdf2$1$2$3$c2FsdA==$aGFzaA==",
                                 "scrypt$1000$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",  # N not a power of 2
                                 "scrypt$1073741824$8$1$c2FsdA==$aGFzaGhhc2hoYXNoaGFzaA==",  # 128 GiB of memory
                                 H.replace("$", "$x", 1)])
def test_malformed_hashes_never_verify(bad):
    assert verify_password("correct horse", bad) is False


def test_empty_password_is_refused():
    with pytest.raises(ConfigError, match="empty"):
        hash_password("")


def test_load_yaml_and_json(tmp_path):
    y = tmp_path / "users.yaml"
    y.write_text(yaml.safe_dump([{"username": "dana", "password_hash": H, "person": "Dana Lee"},
                                 {"username": "guest", "password_hash": H}]))
    users = load_users(y)
    assert users["dana"].person == "Dana Lee" and users["guest"].person is None
    j = tmp_path / "users.json"
    j.write_text(json.dumps({"users": [{"username": "dana", "password_hash": H, "person": "dana@acme.test"}]}))
    assert load_users(j)["dana"].person == "dana@acme.test"


@pytest.mark.parametrize("content, message", [
    (None, "does not exist; create it with `askcolleague users add USERNAME --users-file"),
    ("- username: [unclosed\n", "not valid YAML or JSON at line"),
    ("{}", "must be a non-empty list"),
    ("[]", "must be a non-empty list"),
    ("- just a string\n", "entry 1 is not a mapping"),
    (f"- username: dana\n  pasword_hash: '{H}'\n", "unknown key 'pasword_hash'"),
    ("- username: dana\n  password_hash: hunter2\n", "user 'dana': password_hash is not a scrypt$N$r$p$salt$hash"),
    (f"- username: 'da na'\n  password_hash: '{H}'\n", "username must be 1-64 characters"),
    (f"- username: dana\n  password_hash: '{H}'\n- username: dana\n  password_hash: '{H}'\n", "appears twice"),
    (f"- username: dana\n  password_hash: '{H}'\n  person: ['Dana']\n", "person must be a name or email"),
])
def test_bad_users_file_is_one_clear_line(tmp_path, content, message):
    path = tmp_path / "users.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_users(path)
    text = str(e.value)
    assert message in text and str(path) in text and "\n" not in text


def test_add_replace_remove_and_file_mode(tmp_path):
    path = tmp_path / "users.yaml"
    add_user(path, "dana", "pw-1", person="Dana Lee")
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError, match="already exists.*--replace"):
        add_user(path, "dana", "pw-2")
    add_user(path, "dana", "pw-2", replace=True)
    add_user(path, "sam", "pw-3")
    users = load_users(path)
    assert verify_password("pw-2", users["dana"].password_hash) and users["dana"].person is None
    remove_user(path, "dana")
    assert list(load_users(path)) == ["sam"]
    with pytest.raises(ConfigError, match="last user"):
        remove_user(path, "sam")


def test_the_fixes_the_errors_name_work(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("- username: dana\n  password_hash: hunter2\n  person: Dana Lee\n")
    with pytest.raises(ConfigError, match="--replace"):
        add_user(path, "dana", "pw-1")
    add_user(path, "dana", "pw-1", person="Dana Lee", replace=True)
    assert verify_password("pw-1", load_users(path)["dana"].password_hash)
    path.write_text("")  # an empty file (or `[]`) can be added to
    add_user(path, "sam", "pw-2")
    assert list(load_users(path)) == ["sam"]


def test_users_check_and_reload(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "dana", "pw-1", person="Dana Lee")
    users = Users(path)
    assert users.check("dana", "pw-1") and not users.check("dana", "pw-2") and not users.check("nobody", "pw-1")
    add_user(path, "sam", "pw-3")  # picked up without a restart
    assert users.check("sam", "pw-3") and json.loads(path.read_text())[1]["username"] == "sam"
    path.write_text("not: [valid")  # a broken edit keeps the last good users
    assert users.check("sam", "pw-3") and "not valid YAML" in users.error
    path.write_text(json.dumps([{"username": "dana", "password_hash": hash_password("pw-1")}]))
    assert users.get("sam") is None and users.get("dana").person is None and users.error is None


def test_cli_users_add_list_remove(tmp_path):
    path = tmp_path / "users.yaml"
    runner = CliRunner()
    r = runner.invoke(cli, ["users", "add", "dana", "--person", "Dana Lee", "--users-file", str(path),
                            "--index", str(tmp_path / "none")], input="pw-1\npw-1\n")
    assert r.exit_code == 0, r.output
    assert "added dana (answers as Dana Lee)" in r.output and "pw-1" not in path.read_text()
    r = runner.invoke(cli, ["users", "add", "bot", "--password-stdin"], input="pw-2\n",
                      env={"ASKCOLLEAGUE_USERS_FILE": str(path)})
    assert r.exit_code == 0 and "without groups" in r.output
    r = runner.invoke(cli, ["users", "add", "eve", "--users-file", str(path)], input="a\nb\na\na\n")
    assert r.exit_code == 0 and "do not match" in r.output  # the confirmation must match
    r = runner.invoke(cli, ["users", "list", "--users-file", str(path), "--json"])
    assert json.loads(r.output) == [{"username": "dana", "person": "Dana Lee"}, {"username": "bot", "person": None},
                                    {"username": "eve", "person": None}]
    assert verify_password("pw-2", load_users(path)["bot"].password_hash)
    r = runner.invoke(cli, ["users", "add", "dana", "--users-file", str(path), "--password-stdin"], input="x\n")
    assert r.exit_code == 1 and "already exists" in r.output
    r = runner.invoke(cli, ["users", "remove", "eve", "--users-file", str(path)])
    assert r.exit_code == 0 and "eve" not in load_users(path)
    r = runner.invoke(cli, ["users", "list"])
    assert r.exit_code == 2 and "--users-file" in r.output
    path.write_text("[oops")
    r = runner.invoke(cli, ["users", "list", "--users-file", str(path)])
    assert r.exit_code == 1 and str(path) in r.output and "Traceback" not in r.output


def test_cli_warns_about_an_unknown_person(tmp_path, fake_embedder):
    from askcolleague.indexing.build import build

    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "people.yaml").write_text("- name: Dana Lee\n  email: dana@acme.test\n")
    build([kb], tmp_path / "idx", embedder=fake_embedder, warn=lambda m: None)
    runner = CliRunner()
    args = ["users", "add", "--users-file", str(tmp_path / "u.yaml"), "--index", str(tmp_path / "idx"),
            "--password-stdin"]
    r = runner.invoke(cli, [*args[:2], "dana", *args[2:], "--person", "dana@acme.test"], input="pw\n")
    assert r.exit_code == 0 and "warning" not in r.output
    r = runner.invoke(cli, [*args[:2], "ghost", *args[2:], "--person", "Ghost"], input="pw\n")
    assert r.exit_code == 0 and "warning: no person 'Ghost'" in r.output


# ------------------------------------------------------------------------------------------ fail closed

class _Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _served(tmp_path):
    """A users file with dana and sam, read by Users with a fake clock and a list for its log lines."""
    from askcolleague.web.auth import Users

    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump([{"username": "dana", "password_hash": H}, {"username": "sam", "password_hash": H}]))
    clock, logs = _Clock(), []
    return path, Users(path, grace_seconds=5, clock=clock, log=logs.append), clock, logs


def test_a_broken_edit_fails_closed_after_the_grace_period(tmp_path):
    from askcolleague.errors import LoginError

    path, users, clock, logs = _served(tmp_path)
    path.write_text(f"- username: dana\n  password_hash: '{H}'\n- [broken")  # removes sam, and breaks the file
    assert users.check("sam", "correct horse")  # an editor may still be saving: the last good version
    assert len(logs) == 1 and str(path) in logs[0] and "not valid YAML" in logs[0] and "refused" in logs[0]
    clock.t += 4.9
    assert users.get("sam") is not None and users.unavailable() is None
    clock.t += 0.2
    for call in (lambda: users.get("sam"), lambda: users.get("dana"), lambda: users.check("dana", "correct horse")):
        with pytest.raises(LoginError, match="logins are refused: the server's users file is missing or broken"):
            call()
    assert "users file is missing or broken" in users.unavailable() and len(logs) == 1  # logged once
    path.write_text(f"- username: dana\n  password_hash: '{H}'\n")
    assert users.get("sam") is None and users.check("dana", "correct horse") and users.error is None
    assert logs[-1] == f"users file {path} is good again: 1 user(s)"


def test_a_deleted_users_file_fails_closed(tmp_path):
    from askcolleague.errors import LoginError

    path, users, clock, logs = _served(tmp_path)
    path.unlink()
    assert users.get("dana") is not None
    assert len(logs) == 1 and f"users file {path} does not exist" in logs[0]
    clock.t += 6
    with pytest.raises(LoginError):
        users.get("dana")
    # the grace period runs from when the problem was first seen, not from the latest bad edit
    path.write_text("[")
    clock.t += 1
    with pytest.raises(LoginError):
        users.get("dana")


def test_users_file_refuses_yaml_aliases(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(f"- &u {{username: dana, password_hash: '{H}'}}\n- *u\n")
    with pytest.raises(ConfigError, match="aliases") as e:
        load_users(path)
    assert str(path) in str(e.value)
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    path.write_text(bomb)
    with pytest.raises(ConfigError, match="aliases"):
        load_users(path)

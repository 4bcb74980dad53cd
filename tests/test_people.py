"""People files and identity resolution."""
from __future__ import annotations

from pathlib import Path

import pytest

from askcolleague.errors import LoadError
from askcolleague.models import AuthorRef, Person
from askcolleague.indexing.identity import IdentityResolver, load_people, profile_text
from askcolleague.models import normalize_name, person_id_for

PEOPLE = Path(__file__).parent / "fixtures" / "people"


# -- loading -----------------------------------------------------------------------------------
def test_yaml_list_all_fields():
    dana, jose = load_people(PEOPLE / "people.yaml")
    assert dana.name == "Dana Lee" and dana.email == "dana.lee@example.com"
    assert (dana.title, dana.team, dana.location) == ("Platform Lead", "Infrastructure", "Berlin")
    assert dana.expertise == ["kubernetes", "terraform"] and dana.bio == "Runs the cluster upgrades."
    assert dana.url == "https://wiki.example.com/dana" and dana.aliases == ["D. Lee", "dlee"]
    assert dana.handles == {"slack": "U123", "github": "dana"} and dana.groups == ["eng"]
    assert dana.has_profile and dana.source == str(PEOPLE / "people.yaml")
    assert dana.person_id == "email:dana.lee@example.com"
    assert jose.expertise == ["postgres", "replication"]  # ;-separated string


def test_yaml_people_mapping():
    [priya] = load_people(PEOPLE / "people_wrapped.yaml")
    assert (priya.name, priya.email, priya.team) == ("Priya Nair", "priya@example.com", "Data")


def test_json():
    [sam] = load_people(PEOPLE / "people.json")
    assert (sam.name, sam.email, sam.title) == ("Sam Ortiz", "sam@example.com", "SRE")
    assert sam.expertise == ["oncall", "grafana"] and sam.handles == {"slack": "U777"}


def test_json_list(tmp_path):
    f = tmp_path / "p.json"
    f.write_text('[{"name": "A B"}, {"name": "C D", "handles": "slack:U1;github:cd"}]')
    assert [p.name for p in load_people(f)] == ["A B", "C D"]
    assert load_people(f)[1].handles == {"slack": "U1", "github": "cd"}


def test_csv():
    dana, priya = load_people(PEOPLE / "people.csv")
    assert dana.email == "dana.lee@example.com" and dana.expertise == ["kubernetes", "terraform"]
    assert dana.aliases == ["D. Lee", "dlee"] and dana.groups == ["eng", "oncall"]
    assert dana.handles == {"slack": "U123", "github": "dana"}
    assert priya.name == "Nair, Priya" and priya.title is None and priya.expertise == [] and priya.handles == {}


@pytest.mark.parametrize("name, text, match", [
    ("p.yaml", "- name: [unclosed\n", r"malformed YAML at line \d"),
    ("p.json", '[{"name": "A"},\n ]', "malformed JSON at line 2"),
    ("p.csv", 'name,email\n"Dana,dana@x.com\n', "malformed CSV"),
    ("p.csv", "email,title\na@x.com,Lead\n", "no `name` column"),
    ("p.yaml", "- name: A\n- email: b@x.com\n", "person #2 has no name; add a name"),
    ("p.json", '{"name": "A"}', "expected a list of people"),
    ("p.yaml", "just text\n", "expected a list of people"),
    ("p.yaml", "- just text\n", "person #1 is not a record"),
    ("p.yaml", "- name: A\n  email: nope\n", "not an address"),
    ("p.yaml", "- name: A\n  handles: U123\n", "without a namespace"),
    ("p.yaml", "", "empty file"),
    ("p.txt", "name: A\n", "unsupported people file type"),
])
def test_malformed(tmp_path, name, text, match):
    f = tmp_path / name
    f.write_text(text)
    with pytest.raises(LoadError, match=match) as e:
        load_people(f)
    assert "\n" not in str(e.value) and ";" in str(e.value)


# -- names and ids -----------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [
    ("José Álvarez", "Jose Alvarez"), ("Lee, Dana", "Dana Lee"), ("  Dana   Lee ", "dana lee"),
    ("Dr. Dana Lee", "Dana Lee"), ("Jean-Luc O'Brien", "jean luc obrien"), ("D. Lee", "d lee"),
])
def test_normalize_name(a, b):
    assert normalize_name(a) == normalize_name(b)


def test_person_id_for():
    assert person_id_for("Dana", "Dana@X.com") == "email:dana@x.com"
    assert person_id_for("Lee, Dana") == "name:dana lee"
    assert person_id_for(None, None, "slack:U1") == "handle:slack:u1"


# -- identity resolution -----------------------------------------------------------------------
@pytest.fixture
def resolver():
    return IdentityResolver(load_people(PEOPLE / "people.yaml") + load_people(PEOPLE / "people_wrapped.yaml"))


@pytest.mark.parametrize("ref, expected", [
    (AuthorRef(email="DANA.LEE@example.COM"), "Dana Lee"),
    (AuthorRef(name="Someone", handle="slack:U123"), "Dana Lee"),
    (AuthorRef(handle="github:Dana"), "Dana Lee"),
    (AuthorRef(name="dlee"), "Dana Lee"),
    (AuthorRef(name="D Lee"), "Dana Lee"),
    (AuthorRef(name="Jose Alvarez"), "José Álvarez"),
    (AuthorRef(name="Lee, Dana"), "Dana Lee"),
    (AuthorRef(name="  dana   LEE "), "Dana Lee"),
    (AuthorRef(name="Nair, Priya"), "Priya Nair"),
])
def test_resolve_to_profile(resolver, ref, expected):
    p = resolver.resolve(ref)
    assert p.name == expected and p.has_profile
    assert len(resolver.people()) == 3  # nobody new


def test_unknown_author_becomes_person_and_is_reused(resolver):
    kim = resolver.resolve(AuthorRef("Kim Park", "kim@example.com"))
    assert not kim.has_profile and kim.person_id == "email:kim@example.com" and kim.source is None
    assert resolver.resolve(AuthorRef("K. Park", "KIM@example.com")) is kim
    assert resolver.resolve(AuthorRef("park, kim")) is kim
    assert kim.aliases == ["K. Park"]
    assert [p.person_id for p in resolver.people()][-1] == kim.person_id


def test_handle_only_author_is_named_later(resolver):
    u = resolver.resolve(AuthorRef(handle="slack:U999"))
    assert u.name == "slack:U999" and u.handles == {"slack": "U999"} and u.person_id == "handle:slack:u999"
    assert resolver.resolve(AuthorRef("Ana Silva", "ana@example.com", "slack:U999")) is u
    assert (u.name, u.email) == ("Ana Silva", "ana@example.com")
    assert resolver.resolve(AuthorRef(email="ana@example.com")) is u
    assert resolver.resolve(AuthorRef(name="Ana Silva")) is u


def test_email_only_author_upgrades_name(resolver):
    u = resolver.resolve(AuthorRef(email="bo@example.com"))
    assert u.name == "bo@example.com"
    assert resolver.resolve(AuthorRef("Bo Chen", "bo@example.com")).name == "Bo Chen"
    assert resolver.resolve(AuthorRef("Bo Chen")) is u


def test_name_only_author_learns_email():
    r = IdentityResolver([])
    u = r.resolve(AuthorRef("Kim Park"))
    assert u.person_id == "name:kim park"
    assert r.resolve(AuthorRef("Kim Park", "kim@x.com")) is u and u.email == "kim@x.com"
    assert r.resolve(AuthorRef("K. P.", "kim@x.com")) is u
    assert u.person_id == "name:kim park"  # ids never change once given out


def test_same_name_different_emails_stay_separate():
    a = Person("Dana Lee", "dana@a.com", person_id="email:dana@a.com")
    b = Person("Dana Lee", "dana@b.com", person_id="email:dana@b.com")
    r = IdentityResolver([b, a])
    assert r.resolve(AuthorRef("Dana Lee", "DANA@B.com")).email == "dana@b.com"
    assert r.resolve(AuthorRef("Dana Lee", "dana@a.com")).email == "dana@a.com"
    assert r.resolve(AuthorRef("Lee, Dana")).email == "dana@a.com"  # name only: lowest person_id
    other = r.resolve(AuthorRef("Dana Lee", "dana@c.com"))  # a third email is a third person
    assert not other.has_profile and len(r.people()) == 3


def test_conflicting_handle_blocks_name_match(resolver):
    p = resolver.resolve(AuthorRef("Dana Lee", handle="slack:U555"))
    assert not p.has_profile and p.name == "Dana Lee"
    assert resolver.resolve(AuthorRef("Dana Lee")).has_profile  # name only still prefers the profile


def test_duplicate_profiles_merged():
    a = Person("Dana Lee", "dana@x.com", title="Lead", expertise=["k8s"], handles={"slack": "U1"}, source="a.yaml")
    b = Person("Dana  Lee", "Dana@X.com", team="Infra", expertise=["k8s", "terraform"],
               handles={"slack": "U9", "github": "dl"}, aliases=["DL"], source="b.yaml")
    r = IdentityResolver([a, b])
    [p] = r.people()
    assert (p.name, p.title, p.team, p.source) == ("Dana Lee", "Lead", "Infra", "a.yaml")
    assert p.expertise == ["k8s", "terraform"] and p.handles == {"slack": "U1", "github": "dl"}
    assert r.resolve(AuthorRef(handle="github:dl")) is p and r.resolve(AuthorRef("dl")) is p
    assert a.team is None  # inputs are not modified


def test_people_ids_unique_and_profiles_first():
    r = IdentityResolver([Person("Dana Lee"), Person("Lee, Dana"), Person("Bo", "bo@x.com")])
    r.resolve(AuthorRef("Dana Lee", handle="slack:U1"))  # matches the first profile, learns the handle
    r.resolve(AuthorRef("Cy", handle="slack:U2"))
    ids = [p.person_id for p in r.people()]
    assert ids == ["name:dana lee", "name:dana lee#2", "email:bo@x.com", "name:cy"]
    assert [p.has_profile for p in r.people()] == [True, True, True, False]
    assert r.resolve(AuthorRef(handle="slack:U1")).person_id == "name:dana lee"


def test_email_alias_links_second_address():
    r = IdentityResolver([Person("Dana Lee", "dana@corp.com", aliases=["dana.lee@gmail.com"])])
    assert r.resolve(AuthorRef(email="Dana.Lee@gmail.com")).email == "dana@corp.com"


def test_profile_text():
    dana = load_people(PEOPLE / "people.yaml")[0]
    assert profile_text(dana) == ("Dana Lee — Platform Lead, Infrastructure team (Berlin). "
                                  "Expertise: kubernetes, terraform. Bio: Runs the cluster upgrades.")
    assert profile_text(Person("Bo", team="Data team")) == "Bo — Data team."
    assert profile_text(Person("Bo")) == "Bo."

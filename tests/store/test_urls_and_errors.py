"""Store locations, password masking, the NaN codec, and the errors a user sees."""

from __future__ import annotations

import logging
import math
import socket

import numpy as np
import pytest
import sqlalchemy as sa

from lrpilot.errors import LRPilotError
from lrpilot.store import Store, codec, mask, resolve

SECRET = "s3cret-Pw_42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_default_location_env_and_explicit_url(tmp_path, monkeypatch):
    monkeypatch.delenv("LRPILOT_DB", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert resolve().database == str(tmp_path / "data" / "lrpilot" / "results.db")
    with Store() as store:
        assert store.runs() == [] and (tmp_path / "data" / "lrpilot" / "results.db").exists()
    monkeypatch.setenv("LRPILOT_DB", str(tmp_path / "env.db"))
    assert resolve().database == str(tmp_path / "env.db")
    assert resolve(tmp_path / "arg.db").database == str(tmp_path / "arg.db")
    assert resolve("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert resolve("postgresql+psycopg://u:p@h/db").drivername == "postgresql+psycopg"


def test_mask_hides_the_password():
    masked = mask(f"postgresql+psycopg://me:{SECRET}@db.example:5432/r")
    assert masked == "postgresql+psycopg://me:***@db.example:5432/r"
    assert mask("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_codec_round_trip_and_refusals():
    values = {"a": [math.nan, math.inf, -math.inf, 1.5, None, True, "x"], "b": np.float32(0.5), "c": np.int64(3)}
    encoded = codec.encode(values)
    assert encoded["a"][:3] == [{"$float": "nan"}, {"$float": "inf"}, {"$float": "-inf"}]
    assert type(encoded["b"]) is float and type(encoded["c"]) is int and encoded["a"][5] is True
    decoded = codec.decode(encoded)
    assert math.isnan(decoded["a"][0]) and decoded["a"][1:] == [math.inf, -math.inf, 1.5, None, True, "x"]
    with pytest.raises(TypeError, match="cannot store a object"):
        codec.encode({"x": object()})


def test_unreachable_postgres_names_the_url_with_the_password_masked(caplog):
    caplog.set_level(logging.DEBUG)
    url = f"postgresql+psycopg://lrpilot:{SECRET}@127.0.0.1:{free_port()}/results"
    with pytest.raises(LRPilotError) as err:
        Store(url)
    message = str(err.value)
    assert f"postgresql+psycopg://lrpilot:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in message
    assert "--db" in message and "LRPILOT_DB" in message
    assert SECRET not in message and SECRET not in repr(err.value) and SECRET not in caplog.text


def test_a_wrong_password_is_masked_and_a_right_one_is_not_logged(pg_database, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = sa.make_url(pg_database).set(password=SECRET).render_as_string(hide_password=False)
    with pytest.raises(LRPilotError, match="lrpilot:\\*\\*\\*@") as err:
        Store(wrong)
    assert SECRET not in str(err.value)
    password = sa.make_url(pg_database).password
    with Store(pg_database) as store:
        assert password not in repr(store) and store.tasks() is not None
    assert "***" in caplog.text and password not in caplog.text and SECRET not in caplog.text


def test_unusable_locations_are_user_errors(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(LRPilotError, match="cannot create the folder"):
        Store(tmp_path / "file" / "results.db")
    with pytest.raises(LRPilotError, match=r"unsupported store URL 'mysql://u:\*\*\*@h/db'"):
        Store(f"mysql://u:{SECRET}@h/db")
    (tmp_path / "junk.db").write_text("not a database " * 100)
    with pytest.raises(LRPilotError, match="cannot use the results store"):
        Store(tmp_path / "junk.db")


# --- issue 14, "Secrets (2 of 19 URL forms)": every form of a password is masked in messages and logs -------------

PW = "Pa55-w0rd"
URL_FORMS = [  # (url, the secret in it)
    (f"postgresql+psycopg://me:{PW}@db.example:5432/r", PW),
    (f"postgresql://me:{PW}@db.example/r", PW),
    (f"postgres://me:{PW}@db.example/r", PW),
    (f"postgresql://me:{PW}@/r?host=/var/run/postgresql", PW),
    (f"postgresql://me:{PW}@[::1]:5432/r", PW),
    ("postgresql://me:p@ss@word@db.example/r", "p@ss@word"),  # '@' in the password (was leaked)
    ("postgresql://me:p%40ss%3Aw@db.example/r", "p%40ss%3Aw"),  # percent-encoded
    ("postgresql://me:a:b:c@db.example/r", "a:b:c"),  # ':' in the password
    ("postgresql://me:p/ss@db.example/r", "p/ss"),  # '/' in the password
    ("postgresql://me:p?ss@db.example/r", "p?ss"),  # '?' in the password
    ("postgresql://me:p#ss@db.example/r", "p#ss"),  # '#' in the password
    ("postgresql://me:p ss%20x@db.example/r", "p ss"),  # a space
    ("postgresql://me:pässwörd@db.example/r", "pässwörd"),  # non-ASCII
    (f"postgresql://me@db.example/r?password={PW}", PW),  # in the query string (was leaked)
    (f"postgresql://db.example/r?user=me&password={PW}", PW),
    (f"postgresql://me@db.example/r?sslmode=require&sslpassword={PW}", PW),
    (f"postgresql://me@db.example/r?PASSWORD={PW}&application_name=x", PW),
    (f"postgresql://:{PW}@db.example/r", PW),  # no user
    (f"mysql://me:{PW}@db.example/r", PW),  # an unsupported backend, still masked
    (f"postgresql+psycopg://me:{PW}@db.example:5432/r?password={PW}2", PW),  # both at once
    (f"sqlite:///tmp/x.db?password={PW}", PW),
]


@pytest.mark.parametrize("url, secret", URL_FORMS, ids=[f"form{i}" for i in range(len(URL_FORMS))])
def test_every_form_of_password_is_masked(url, secret):
    masked = mask(url)
    assert secret not in masked and "***" in masked and masked != "<unparsable URL>"
    assert mask(resolve(url)) == masked.replace("postgres://", "postgresql+psycopg://").replace(
        "postgresql://", "postgresql+psycopg://")
    assert mask(secret) in ("<unparsable URL>", secret) or secret not in mask(secret)  # never raises


def test_at_least_19_url_forms_are_covered():
    assert len(URL_FORMS) >= 19


def test_a_password_with_an_at_sign_is_the_password_not_part_of_the_host():
    url = resolve("postgresql://me:p@ss@db.example:5432/r")
    assert (url.username, url.password, url.host, url.port) == ("me", "p@ss", "db.example", 5432)
    assert resolve("postgresql://me:p%40ss@db.example/r").password == "p@ss"


@pytest.mark.parametrize("url, secret", [
    ("postgresql+psycopg://lrpilot:p@ss@127.0.0.1:{port}/results", "p@ss"),
    ("postgresql+psycopg://lrpilot@127.0.0.1:{port}/results?password=" + PW, PW),
])
def test_an_unreachable_store_masks_every_password_form_in_its_message_and_log(url, secret, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(LRPilotError) as err:
        Store(url.format(port=free_port()))
    assert secret not in str(err.value) and secret not in caplog.text and "***" in str(err.value)
    assert "Start the database server or fix the URL" in str(err.value)  # a connection error says so


@pytest.mark.parametrize("driver_message, advice", [
    ("database or disk is full", "disk is full"),
    ("attempt to write a readonly database", "read-only"),
    ("database disk image is malformed", "damaged"),
    ("connection refused", "Start the database server or fix the URL"),
])
def test_the_store_error_names_the_cause_not_always_the_server(tmp_path, driver_message, advice):
    # issue 14: "the store error always advises 'Start the database server or fix the URL', even for a full disk"
    import sqlite3

    store = Store(tmp_path / "r.db")
    error = sa.exc.OperationalError("INSERT ...", {}, sqlite3.OperationalError(driver_message))
    message = str(store._error(error))
    assert advice in message and driver_message in message
    if advice != "Start the database server or fix the URL":
        assert "database server" not in message
    store.close()


def test_a_read_only_store_file_says_read_only(tmp_path):
    path = tmp_path / "r.db"
    Store(path).close()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    with Store(url) as store:
        assert store.runs() == []
        with pytest.raises(LRPilotError, match="read-only") as err:
            store.claim("tiny", "FIX(k0=0.01)", 0, 100)
        assert "database server" not in str(err.value)

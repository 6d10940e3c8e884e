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

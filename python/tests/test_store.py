import io
import os
import pickle
import urllib.parse

import psycopg
import pytest
import quixote.publish
from quixote.directory import Directory
from quixote.http_request import HTTPRequest
from quixote.publish import Publisher
from quixote import get_session
from session3.Session import Session
from session3.SessionManager import SessionManager
from session3.store.DirectorySessionStore import DirectorySessionStore
from session4.DirectorySessionStore import DirectorySessionStore as Session4DirectoryStore
from session4.Session4Session import Session4, Session4SessionManager

from qxbridge_pgstore import SessionStoreError, SessionStoreUnavailable, lock_key
from qxbridge_pgstore import quixote_store, session3_store


@pytest.fixture(autouse=True)
def current_request():
    """Sessions are made during a request (they record REMOTE_ADDR): give the
    tests a current request of a publisher of their own."""
    quixote.publish._publisher = None
    pub = Publisher(Directory())
    pub._set_request(HTTPRequest(io.BytesIO(b""), {"REMOTE_ADDR": "192.0.2.7", "REQUEST_METHOD": "GET"}))
    yield
    quixote.publish._publisher = None


def raw(dsn, table, id):
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pickle FROM %s WHERE id = %%s" % table, (id,)).fetchone()
        return None if row is None else bytes(row[0])


def sql(dsn, statement):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else None


@pytest.fixture
def store3(dsn, table):
    s = session3_store.PostgresSessionStore(dsn, table=table)
    yield s
    s.close()


def test_session3_pickles_match_directory_store(store3, dsn, table, tmp_path):
    s = Session("abcdEFGH123")
    s.set_user("alice")
    s.counter = 3
    store3.save_session(s)
    DirectorySessionStore(str(tmp_path)).save_session(s)
    assert raw(dsn, table, s.id) == (tmp_path / s.id).read_bytes()
    assert raw(dsn, table, s.id)[:2] == b"\x80\x04"
    loaded = store3.load_session(s.id)
    assert type(loaded) is Session and vars(loaded) == vars(s)


def test_session3_api(store3, dsn, table):
    assert store3.load_session("nope") is None
    assert store3.load_session("nope", "dflt") == "dflt"
    assert not store3.has_session("nope")
    assert store3.load_session("../etc") is None
    sessions = []
    for id, user in [("s1", "alice"), ("s2", "bob"), ("s3", "alice"), ("s4", None)]:
        s = Session(id)
        s.set_user(user)
        store3.save_session(s)
        sessions.append(s)
    assert store3.has_session("s1")
    assert [id for id, _ in store3.iter_sessions()] == ["s1", "s2", "s3", "s4"]
    assert store3.user_session_ids("alice") == ["s1", "s3"]
    store3.delete_session(sessions[1])
    store3.delete_session(sessions[1])  # gone already: nothing to do
    assert not store3.has_session("s2")
    sql(dsn, "UPDATE %s SET modified = now() - interval '2 hours' WHERE id IN ('s1', 's4')" % table)
    assert store3.delete_old_sessions(60) == (2, 1)
    assert [id for id, _ in store3.iter_sessions()] == ["s3"]
    store3.setup()  # again: idempotent, keeps the sessions
    assert store3.has_session("s3")
    with pytest.raises(ValueError):
        store3.save_session(Session("bad/id"))


def test_meta_columns(store3, dsn, table):
    s = Session("meta1")
    s.set_user("carol")
    s._creation_time = 1700000000.5
    s._access_time = 1700000100.25
    store3.save_session(s)
    row = sql(dsn, "SELECT user_name, extract(epoch FROM created), extract(epoch FROM accessed) FROM %s" % table)[0]
    assert row[0] == "carol" and float(row[1]) == 1700000000.5 and float(row[2]) == 1700000100.25


def test_quixote_api_matches_session4_directory_store(dsn, table, tmp_path):
    store = quixote_store.PostgresSessionStore(dsn, table=table)
    s = Session4("q4session01")
    s.set_user("dave")
    s.basket = ["apple"]
    store.save_session(s)
    Session4DirectoryStore(str(tmp_path)).save_session(s)
    assert raw(dsn, table, s.id) == (tmp_path / s.id).read_bytes()
    loaded = store.load_session(s.id)
    assert vars(loaded) == vars(s) and not loaded.is_dirty()
    assert store.load_session(None) is None and store.load_session("missing") is None
    assert store.has_session(s.id) and not store.has_session("missing")
    assert list(store) == [s.id]
    store.delete_session(s.id)
    store.delete_session(s.id)
    assert list(store) == []
    store.close()


class Root(Directory):
    _q_exports = ["", "login", "counter"]

    def _q_index(self):
        return "user=%s" % get_session().user

    def login(self):
        get_session().set_user("erin")
        return "ok"

    def counter(self):
        session = get_session()
        session.counter = getattr(session, "counter", 0) + 1
        return str(session.counter)


@pytest.fixture
def publisher(dsn, table):
    quixote.publish._publisher = None
    # The one line an application changes in its create_publisher:
    store = session3_store.PostgresSessionStore(dsn, table=table)  # was DirectorySessionStore(directory)
    pub = Publisher(Root(), session_manager=SessionManager(store))
    yield pub
    store.close()
    quixote.publish._publisher = None


def request(pub, path, cookie=None):
    env = {"REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": path, "SERVER_NAME": "x",
           "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.0"}
    if cookie:
        env["HTTP_COOKIE"] = "QX_session=" + cookie
    resp = pub.process(io.BytesIO(b""), env)
    body = b"".join(resp.generate_body_chunks()).decode() if resp.status_code == 200 else ""
    cookies = resp.cookies.get("QX_session", {}).get("value") if resp.cookies else None
    return resp.status_code, body, cookies


def test_publisher_sessions_in_postgres(publisher, dsn, table, cluster):
    status, body, id = request(publisher, "/login")
    assert status == 200 and id
    assert sql(dsn, "SELECT user_name FROM %s WHERE id = '%s'" % (table, id)) == [("erin",)]
    assert request(publisher, "/counter", id)[:2] == (200, "1")
    assert request(publisher, "/counter", id)[:2] == (200, "2")
    assert request(publisher, "/", id)[:2] == (200, "user=erin")
    if cluster is None:
        return
    cluster.stop()
    try:
        assert request(publisher, "/counter", id)[0] == 503
    finally:
        cluster.start()
    assert request(publisher, "/counter", id)[:2] == (200, "3")


def test_database_restart(store3, cluster):
    if cluster is None:
        pytest.skip("the server is not this test's to restart")
    s = Session("restart01")
    s.set_user("frank")
    store3.save_session(s)
    cluster.stop()
    try:
        with pytest.raises(SessionStoreUnavailable) as info:
            store3.load_session(s.id)
        assert info.value.status_code == 503
        with pytest.raises(SessionStoreUnavailable):
            store3.save_session(s)
        # Outside a request (a cron job's sweep), or once the request has its
        # session, the error is no PublishError.
        quixote.publish._publisher = None
        with pytest.raises(SessionStoreError) as info:
            store3.delete_old_sessions(60)
        assert not isinstance(info.value, SessionStoreUnavailable)
    finally:
        cluster.start()
    # The same store serves again: its dead connection is replaced.
    assert store3.load_session(s.id).user == "frank"


def test_slow_statement(dsn, table):
    store = session3_store.PostgresSessionStore(dsn, table=table, timeout=1.0)
    store.save_session(Session("slow01"))
    with psycopg.connect(dsn) as blocker:
        blocker.execute("LOCK TABLE %s IN ACCESS EXCLUSIVE MODE" % table)
        with pytest.raises(SessionStoreUnavailable):
            store.load_session("slow01")
        blocker.rollback()
    assert store.load_session("slow01").id == "slow01"
    store.close()


def test_lock_key_matches_go():
    # pgstore.TestLockKey checks the same value.
    assert lock_key("session:abc") == 0x46E4FF5A645ED53D


class Quixote4SessionManager(Session4SessionManager):
    # Quixote 4's BaseSessionManager has ACCESS_TIME_RESOLUTION = 1; the installed
    # Quixote 3.8's does not.
    ACCESS_TIME_RESOLUTION = 1


def test_session4_publisher(dsn, table):
    """Quixote's own session API as session4 uses it: Session4SessionManager over
    the quixote.session store, through a real Publisher."""
    quixote.publish._publisher = None
    store = quixote_store.PostgresSessionStore(dsn, table=table)
    pub = Publisher(Root(), session_manager=Quixote4SessionManager(session_class=Session4, session_store=store))
    try:
        status, _, id = request(pub, "/login")
        assert status == 200 and id
        assert request(pub, "/counter", id)[:2] == (200, "1")
        assert request(pub, "/counter", id)[:2] == (200, "2")
        assert request(pub, "/", id)[:2] == (200, "user=erin")
        session = store.load_session(id)
        assert type(session) is Session4 and session.counter == 2 and not session.is_dirty()
        assert sql(dsn, "SELECT user_name FROM %s" % table) == [("erin",)]
    finally:
        store.close()
        quixote.publish._publisher = None


def test_failed_save_is_not_success(publisher, dsn, table):
    """A save the database refuses (here: as if its disk were full) fails the
    request instead of answering it as done, and the stored session is untouched."""
    status, _, id = request(publisher, "/login")
    assert status == 200
    assert request(publisher, "/counter", id)[:2] == (200, "1")
    before = raw(dsn, table, id)
    sql(dsn, """CREATE FUNCTION %s_full() RETURNS trigger LANGUAGE plpgsql AS
        $$BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = 'disk_full'; END$$;
        CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON %s FOR EACH ROW EXECUTE FUNCTION %s_full()"""
        % (table, table, table))
    try:
        assert request(publisher, "/counter", id)[0] == 500
        assert raw(dsn, table, id) == before
    finally:
        sql(dsn, "DROP TRIGGER refuse ON %s" % table)
    assert request(publisher, "/counter", id)[:2] == (200, "2")


def test_sweep_keeps_session_saved_during_it(store3, dsn, table):
    """A save of an idle session that commits while delete_old_sessions waits for
    the row's lock survives: PostgreSQL re-checks only the DELETE's own condition
    against the newly saved row."""
    import threading
    import time

    s = Session("idle1")
    store3.save_session(s)
    sql(dsn, "UPDATE %s SET modified = now() - interval '2 hours'" % table)
    with psycopg.connect(dsn) as saver:  # a save held in a transaction
        saver.execute("UPDATE %s SET pickle = 'new', modified = now() WHERE id = 'idle1'" % table)
        result = []
        sweep = threading.Thread(target=lambda: result.append(store3.delete_old_sessions(60)))
        sweep.start()
        while not sql(dsn, "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                           " AND query LIKE 'DELETE%'"):
            time.sleep(0.01)
        saver.commit()
        sweep.join()
    assert result == [(0, 1)]
    assert raw(dsn, table, "idle1") == b"new"


class _Account:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def test_user_name_of_object_users(store3, dsn, table):
    """user_name holds an object user's name by the gateway's rule (Go's
    quixote.Session.UserName): login, username, user_name, user_id, id, name."""
    from qxbridge_pgstore import user_name

    assert user_name("alice") == "alice"
    assert user_name("") is None and user_name(None) is None and user_name(7) is None
    assert user_name(_Account(login="ann", name="Ann Smith")) == "ann"
    assert user_name(_Account(id=42, name="Bob")) == "42"
    assert user_name(_Account(login="", name="Carol")) == "Carol"
    assert user_name(_Account(email="x@example.org")) is None
    s = Session("objuser1")
    s.set_user(_Account(login="ann", name="Ann Smith"))
    store3.save_session(s)
    assert store3.user_session_ids("ann") == ["objuser1"]


def test_user_name_rule_can_be_replaced(dsn, table):
    s3 = session3_store.PostgresSessionStore(dsn, table=table, user_name=lambda u: u and u.upper())
    try:
        s = Session("hooked1")
        s.set_user("alice")
        s3.save_session(s)
        assert s3.user_session_ids("ALICE") == ["hooked1"]
    finally:
        s3.close()

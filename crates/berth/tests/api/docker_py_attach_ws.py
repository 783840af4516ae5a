"""docker-py attaches to containers over a websocket (`attach_socket(...,
ws=True)`, which docker-py only does over TCP) through `berth system
service`.

Usage: docker_py_attach_ws.py BASE_URL
Image `bb` (busybox) is in the store. Every step checks what it got; the
last line says all passed.
"""
import sys

import docker
import websocket
from websocket import ABNF

base_url = sys.argv[1]
api = docker.APIClient(base_url=base_url, version="1.43", timeout=60)


def frames(ws, until=None):
    """(opcode, payload) of each message until the server's close frame
    (returned last as (OPCODE_CLOSE, status code)), or until the joined
    payloads contain `until`."""
    got = []
    while True:
        op, frame = ws.recv_data_frame(True)
        if op == ABNF.OPCODE_CLOSE:
            code = int.from_bytes(frame.data[:2], "big") if len(frame.data) >= 2 else None
            got.append((op, code))
            return got
        got.append((op, frame.data))
        if until is not None and until in b"".join(d for o, d in got if o != ABNF.OPCODE_CLOSE):
            return got


def payload(got):
    return b"".join(d for o, d in got if o != ABNF.OPCODE_CLOSE)


# stdin, stdout and stderr of a running container: both outputs unframed,
# in binary messages; text and binary input both reach stdin; the end of
# the container closes the websocket with 1000.
c = api.create_container(
    "bb", ["sh", "-c", "read x; echo out:$x; echo err:$x >&2; read y; echo bye:$y"], stdin_open=True
)["Id"]
api.start(c)
ws = api.attach_socket(c, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}, ws=True)
ws.send_binary(b"hello\n")
got = frames(ws, until=b"err:hello\n")
got += frames(ws, until=b"out:hello\n") if b"out:hello\n" not in payload(got) else []
assert all(o == ABNF.OPCODE_BINARY for o, _ in got), got
assert sorted(payload(got).splitlines()) == [b"err:hello", b"out:hello"], got
ws.send("text works\n")
rest = frames(ws)
assert payload(rest) == b"bye:text works\n", rest
assert rest[-1] == (ABNF.OPCODE_CLOSE, 1000), rest
ws.close()
assert api.wait(c)["StatusCode"] == 0
api.remove_container(c)

# Attached before the start (the session the start opens), stdout only:
# stderr is not sent, stdin is not attached.
c = api.create_container("bb", ["sh", "-c", "echo one; echo two >&2; echo three"])["Id"]
ws = api.attach_socket(c, params={"stdout": 1, "stream": 1}, ws=True)
api.start(c)
got = frames(ws)
assert payload(got) == b"one\nthree\n", got
assert got[-1] == (ABNF.OPCODE_CLOSE, 1000), got
ws.close()
api.remove_container(c, force=True)

# Before API 1.42 all three streams are attached whatever the parameters
# say, and before 1.28 the output comes in text messages.
old = docker.APIClient(base_url=base_url, version="1.27", timeout=60)
c = old.create_container("bb", ["sh", "-c", "read x; echo got:$x >&2"], stdin_open=True)["Id"]
old.start(c)
ws = old.attach_socket(c, params={"stream": 1}, ws=True)
ws.send("old\n")
got = frames(ws)
assert payload(got) == b"got:old\n", got
assert all(o == ABNF.OPCODE_TEXT for o, _ in got[:-1]), got
ws.close()
old.remove_container(c, force=True)

# With a tty: what the container writes comes back raw, the tty's echo
# included; the detach keys end the session and leave the container
# running.
c = api.create_container("bb", ["cat"], stdin_open=True, tty=True)["Id"]
api.start(c)
ws = api.attach_socket(c, params={"stdin": 1, "stdout": 1, "stream": 1, "detachKeys": "ctrl-x"}, ws=True)
ws.send_binary(b"ping\n")
got = frames(ws, until=b"ping\r\nping\r\n")
assert payload(got) == b"ping\r\nping\r\n", got
ws.send_binary(b"\x18")
got = frames(ws)
assert got[-1] == (ABNF.OPCODE_CLOSE, 1000), got
ws.close()
assert api.inspect_container(c)["State"]["Running"], "detaching leaves the container running"
api.remove_container(c, force=True)

# Errors: a container that does not exist is a 404 before any upgrade; a
# plain GET that is no websocket handshake is a 400.
try:
    api.attach_socket("no-such-container", ws=True)
    raise AssertionError("attach/ws to a missing container must fail")
except docker.errors.NotFound:
    pass
except websocket.WebSocketBadStatusException as e:
    assert e.status_code == 404, e
c = api.create_container("bb", ["true"])["Id"]
r = api._get(api._url("/containers/{0}/attach/ws", c), params={"stream": 1})
assert r.status_code == 400, (r.status_code, r.text)
assert "websocket" in r.json()["message"], r.text
api.remove_container(c)

print("docker-py attach/ws: every check passed")

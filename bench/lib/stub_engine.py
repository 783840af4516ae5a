#!/usr/bin/env python3
"""A stand-in engine for measuring the docker client alone (bench only).

`docker run --rm IMAGE CMD` through a socket is the client's own start-up
and five requests (ping, create, attach, wait, start) around whatever the
engine does. This serves those five on a unix socket and does nothing:
the container "exits" with 0 as soon as it is started. Timing `docker run`
against it gives the part of every socket's number that no engine can
remove. Nothing here is a test; it is a reference row in bench/RESULTS.md.

usage: stub_engine.py SOCKET_PATH   (serves until killed)
"""
import json
import os
import socket
import sys
import threading

API = "1.43"
HEADERS = f"Api-Version: {API}\r\nDocker-Experimental: false\r\nOstype: linux\r\nServer: stub\r\n"

# Per container: the attach and wait connections waiting for the start.
pending = {}
# Containers already started ("exited"): the docker client sends its wait
# without waiting for an answer, so the start may be served first.
started = set()
lock = threading.Lock()

WAIT_BODY = b'{"StatusCode":0,"Error":null}\n'


def end_wait(w):
    w.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(WAIT_BODY), WAIT_BODY))
    w.close()


def read_request(conn, buf):
    """One request's head and body; returns (method, path, rest of buf)."""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return None, None, b""
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path = lines[0].split(" ")[:2]
    length = 0
    for line in lines[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    while len(buf) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
    return method, path.split("?")[0], buf[length:]


def respond(conn, status, body=b"", ctype="application/json", extra=""):
    head = f"HTTP/1.1 {status}\r\n{HEADERS}{extra}"
    if status.startswith("204") or status.startswith("304"):
        conn.sendall((head + "\r\n").encode())
    else:
        conn.sendall((head + f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)


def container_id(path):
    parts = path.strip("/").split("/")
    i = parts.index("containers")
    return parts[i + 1]


def serve(conn):
    buf = b""
    try:
        while True:
            method, path, buf = read_request(conn, buf)
            if method is None:
                return
            if path.endswith("/_ping"):
                respond(conn, "200 OK", b"" if method == "HEAD" else b"OK", "text/plain")
            elif path.endswith("/containers/create"):
                cid = os.urandom(32).hex()
                respond(conn, "201 Created", json.dumps({"Id": cid, "Warnings": []}).encode())
            elif path.endswith("/attach"):
                conn.sendall(
                    b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n"
                    b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
                )
                with lock:
                    cid = container_id(path)
                    if cid not in started:
                        pending.setdefault(cid, {})["attach"] = conn
                        return  # closed at the start
                conn.close()
                return
            elif path.endswith("/wait"):
                conn.sendall(
                    f"HTTP/1.1 200 OK\r\n{HEADERS}Content-Type: application/json\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n".encode()
                )
                with lock:
                    cid = container_id(path)
                    if cid not in started:
                        pending.setdefault(cid, {})["wait"] = conn
                        return  # answered at the start
                end_wait(conn)
                return
            elif path.endswith("/start"):
                cid = container_id(path)
                respond(conn, "204 No Content")
                with lock:
                    started.add(cid)
                    waiting = pending.pop(cid, {})
                w = waiting.get("wait")
                if w:
                    end_wait(w)
                a = waiting.get("attach")
                if a:
                    a.close()
            else:
                respond(conn, "404 Not Found", json.dumps({"message": f"stub: {method} {path}"}).encode())
    except (ConnectionError, OSError):
        return


def main():
    path = sys.argv[1]
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.listen(64)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()

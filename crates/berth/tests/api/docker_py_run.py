"""docker-py runs containers, builds, execs and reads events through
`berth system service`, then 16 clients at once run, inspect and remove.

Usage: docker_py_run.py BASE_URL
Image `bb` (busybox) is in the store. Every step checks what it got; the
last line says all passed.
"""
import io
import sys
import tarfile
import threading
import time

import docker

base_url = sys.argv[1]
client = docker.DockerClient(base_url=base_url, version="auto", timeout=120)
started = int(time.time()) - 1

# containers.run, not detached: stdout as bytes, the exit code checked.
out = client.containers.run("bb", ["sh", "-c", "echo hi; echo err >&2"], remove=True)
assert out == b"hi\n", out
try:
    client.containers.run("bb", ["sh", "-c", "exit 3"], remove=True)
    raise AssertionError("a failing container must raise")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3, e.exit_status

# Detached: logs streamed, exec with demux, stats, stop.
c = client.containers.run(
    "bb", ["sh", "-c", "for i in 1 2 3; do echo n$i; done; sleep 300"],
    detach=True, name="pyrun", labels={"via": "py"}, environment={"K": "v"},
)
lines = []
for chunk in c.logs(stream=True, follow=True):
    lines.append(chunk)
    if b"".join(lines).count(b"\n") >= 3:
        break
assert b"".join(lines) == b"n1\nn2\nn3\n", lines
code, (o, e) = c.exec_run(["sh", "-c", "echo $K; echo oops >&2; exit 2"], demux=True)
assert (code, o, e) == (2, b"v\n", b"oops\n"), (code, o, e)
code, o = c.exec_run("cat /etc/hostname")
assert code == 0 and o.strip() == c.id[:12].encode(), (code, o)
s = c.stats(stream=False)
assert s["id"] == c.id and "memory_stats" in s, s
c.reload()
assert c.status == "running" and c.labels["via"] == "py", (c.status, c.labels)
c.stop(timeout=1)
assert c.wait()["StatusCode"] != 0
c.remove()

# images.build with a tar context, build args, a target.
df = b"FROM bb AS one\nARG WHO=nobody\nRUN echo hello-$WHO > /who\nFROM one AS two\nCMD [\"cat\", \"/who\"]\n"
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    info = tarfile.TarInfo("Dockerfile")
    info.size = len(df)
    t.addfile(info, io.BytesIO(df))
buf.seek(0)
image, logs = client.images.build(fileobj=buf, custom_context=True, tag="pybuilt:1",
                                  buildargs={"WHO": "py"}, target="two")
assert "pybuilt:1" in image.tags, image.tags
assert any("Successfully built" in l.get("stream", "") for l in logs), logs
assert client.containers.run("pybuilt:1", remove=True) == b"hello-py\n"

# Networks and volumes.
net = client.networks.create("pynet", labels={"a": "b"})
assert client.networks.get("pynet").id == net.id
net.remove()
vol = client.volumes.create("pyvol", labels={"x": "y"})
assert vol.attrs["Labels"] == {"x": "y"}, vol.attrs
assert [v for v in client.volumes.list() if v.name == "pyvol"]
vol.remove()

# 16 clients at once: run, inspect, remove, each its own connection.
errors = []


def worker(i):
    try:
        cl = docker.DockerClient(base_url=base_url, version="1.43", timeout=120)
        name = "conc%d" % i
        out = cl.containers.run("bb", ["echo", name], name=name)
        assert out == (name + "\n").encode(), out
        got = cl.containers.get(name)
        assert got.attrs["State"]["ExitCode"] == 0, got.attrs["State"]
        got.remove()
    except Exception as e:  # noqa: BLE001 - every failure is reported
        errors.append("%d: %r" % (i, e))


threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors
left = [c.name for c in client.containers.list(all=True)]
assert left == [], left

# Events: what happened above, decoded.
until = int(time.time()) + 1
seen = [
    (ev["Type"], ev["Action"], ev["Actor"]["Attributes"].get("name"))
    for ev in client.events(since=started, until=until, decode=True)
]
for i in range(16):
    for action in ("create", "start", "die", "destroy"):
        assert ("container", action, "conc%d" % i) in seen, (i, action)
assert ("network", "create", "pynet") in seen
assert ("volume", "destroy", None) in seen or any(s[:2] == ("volume", "destroy") for s in seen)
print("docker-py run: every check passed")

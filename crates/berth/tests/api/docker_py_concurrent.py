"""16 docker-py clients at once through one `berth system service`: each
pulls from a local registry, builds, creates, starts, reads logs (plain and
followed), removes; all of them race for one container name. Nothing may be
lost, and every error any request gets must be Docker's shape: a 4xx/5xx
status with a JSON `{"message": ...}` body.

Usage: docker_py_concurrent.py BASE_URL REGISTRY
Image `bb` (busybox) is in the store; REGISTRY (host:port) holds
conc/img0..conc/img3, each `bb` plus a file /k holding its number, which
the store does not have.
"""
import io
import json
import sys
import tarfile
import threading
import time

import docker

base_url, registry = sys.argv[1], sys.argv[2]
N = 16
started = int(time.time()) - 1
barrier = threading.Barrier(N)
failures = []  # (worker, step, what): anything that went wrong
shaped = []  # (worker, step, status): errors that had Docker's shape
conflict = {"won": [], "409": []}
lock = threading.Lock()


def docker_shaped(e):
    """An APIError whose response is a 4xx/5xx with a JSON message."""
    if not isinstance(e, docker.errors.APIError) or e.response is None:
        return False
    status = e.response.status_code
    try:
        body = json.loads(e.response.content)
    except ValueError:
        return False
    return 400 <= status < 600 and isinstance(body.get("message"), str) and body["message"] != ""


def step(i, name, f):
    try:
        return f()
    except Exception as e:  # noqa: BLE001 - every failure is reported
        with lock:
            if docker_shaped(e):
                shaped.append((i, name, e.response.status_code))
            failures.append((i, name, repr(e), docker_shaped(e)))
        raise


def context(i):
    df = ("FROM bb\nRUN echo built-%d > /b\nCMD [\"cat\", \"/b\"]\n" % (i % 8)).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        t.addfile(info, io.BytesIO(df))
    buf.seek(0)
    return buf


def worker(i):
    cl = docker.DockerClient(base_url=base_url, version="auto", timeout=180)
    k = i % 4
    ref = "%s/conc/img%d" % (registry, k)

    # A pull: four workers pull each image at once.
    def pull():
        img = cl.images.pull(ref, tag="latest")
        assert ref + ":latest" in img.tags, img.tags
    step(i, "pull", pull)

    # A build: two workers build each Dockerfile at once (same cache key).
    def build():
        img, logs = cl.images.build(fileobj=context(i), custom_context=True, tag="built%d:1" % i)
        assert "built%d:1" % i in img.tags, img.tags
        assert any("Successfully built" in l.get("stream", "") for l in logs), logs
    step(i, "build", build)

    # create / start / wait / logs (stdout and stderr apart) / rm, of the pulled image.
    def lifecycle():
        c = cl.containers.create(ref, ["sh", "-c", "cat /k; echo out-%d; echo err-%d >&2" % (i, i)],
                                 name="conc%d" % i, labels={"worker": str(i)})
        c.start()
        assert c.wait(timeout=60)["StatusCode"] == 0
        out = c.logs(stdout=True, stderr=False)
        err = c.logs(stdout=False, stderr=True)
        assert out == ("%d\nout-%d\n" % (k, i)).encode(), out
        assert err == ("err-%d\n" % i).encode(), err
        c.remove()
    step(i, "lifecycle", lifecycle)

    # The built image runs; logs followed while the container writes.
    def follow():
        c = cl.containers.run("built%d:1" % i, ["sh", "-c", "cat /b; sleep 0.3; echo late-%d" % i],
                              detach=True, name="follow%d" % i)
        got = b"".join(c.logs(stream=True, follow=True))
        assert got == ("built-%d\nlate-%d\n" % (i % 8, i)).encode(), got
        assert c.wait(timeout=60)["StatusCode"] == 0
        c.remove(v=True)
    step(i, "follow", follow)

    # Everyone creates the same name at once: one wins, the rest get 409.
    barrier.wait(timeout=300)
    try:
        c = cl.containers.create("bb", ["true"], name="contested")
        with lock:
            conflict["won"].append(c.id)
    except docker.errors.APIError as e:
        with lock:
            if e.status_code == 409 and docker_shaped(e):
                conflict["409"].append(i)
            else:
                failures.append((i, "contested", repr(e), docker_shaped(e)))
    barrier.wait(timeout=300)

    # What does not exist is a 404 in Docker's shape, never a crash.
    try:
        cl.containers.get("nosuch%d" % i)
        failures.append((i, "404", "a missing container was found", False))
    except docker.errors.NotFound as e:
        if not docker_shaped(e) or e.status_code != 404:
            failures.append((i, "404", repr(e), docker_shaped(e)))


def run(i):
    try:
        worker(i)
    except Exception as e:  # noqa: BLE001 - recorded by step() or here
        with lock:
            if not any(f[0] == i for f in failures):
                failures.append((i, "worker", repr(e), docker_shaped(e)))


threads = [threading.Thread(target=run, args=(i,)) for i in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join()

for f in failures:
    print("worker %d, %s: %s (Docker-shaped: %s)" % f)
assert all(f[3] for f in failures), "an error that is not a Docker-shaped 4xx/5xx"
assert not failures, "%d failures" % len(failures)
assert len(conflict["won"]) == 1 and len(conflict["409"]) == N - 1, conflict

client = docker.DockerClient(base_url=base_url, version="auto", timeout=60)
client.containers.get("contested").remove()

# Nothing lost: every image is there and right, no container is left.
tags = {t for img in client.images.list() for t in img.tags}
for i in range(N):
    assert "built%d:1" % i in tags, ("built", i, sorted(tags))
for k in range(4):
    assert "%s/conc/img%d:latest" % (registry, k) in tags, ("pulled", k, sorted(tags))
    out = client.containers.run("%s/conc/img%d" % (registry, k), ["cat", "/k"], remove=True)
    assert out == ("%d\n" % k).encode(), out
# Builds of one Dockerfile at once may both miss the cache (Docker's do
# too); once done, the same build again is all cache hits.
ids = {client.images.get("built%d:1" % i).id for i in range(N)}
again, logs = client.images.build(fileobj=context(0), custom_context=True)
assert again.id in ids, again.id
assert any("Using cache" in l.get("stream", "") for l in logs), logs
left = [c.name for c in client.containers.list(all=True)]
assert left == [], left

# Every container's life is in the events journal.
until = int(time.time()) + 1
seen = {
    (ev["Action"], ev["Actor"]["Attributes"].get("name"))
    for ev in client.events(since=started, until=until, filters={"type": "container"}, decode=True)
}
for i in range(N):
    for name in ("conc%d" % i, "follow%d" % i):
        for action in ("create", "start", "die", "destroy"):
            assert (action, name) in seen, (action, name)
print("docker-py concurrent: 16 clients, every check passed")

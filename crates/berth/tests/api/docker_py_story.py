"""docker-py against `berth system service`: the Python a user writes.

Usage: docker_py_story.py BASE_URL CONTAINER
CONTAINER was created (not started) by berth's own CLI from image `bb`.
Every step checks what it got; the last line says all passed.
"""
import io
import sys
import tarfile

import docker

base_url, name = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url=base_url, version="auto", timeout=60)

# Versions: docker-py negotiates berth's API version.
assert client.ping() is True
version = client.version()
assert version["ApiVersion"] == "1.43", version
assert client.api.api_version == "1.43", client.api.api_version
info = client.info()
assert info["Images"] >= 1 and info["OSType"] == "linux", info

# Images: get, tag, history, save, load, remove, errors.
bb = client.images.get("bb")
assert "bb:latest" in bb.tags, bb.tags
assert bb.tag("bb", "py") is True
assert "bb:py" in client.images.get("bb:py").tags
assert [i for i in client.images.list() if "bb:py" in i.tags], "the new tag is listed"
assert bb.history()[0]["Id"] == bb.id
archive = b"".join(client.images.get("bb:py").save(named="bb:py"))
client.images.remove("bb:py")
loaded = client.images.load(archive)
assert "bb:py" in loaded[0].tags, [i.tags for i in loaded]
client.images.remove("bb:py")
try:
    client.images.get("nosuch")
    raise AssertionError("a missing image must be a 404")
except docker.errors.ImageNotFound as e:
    assert "No such image" in str(e), e

# A container berth's CLI created: start, top, archive both ways, diff,
# stop, wait, remove.
ctr = client.containers.get(name)
assert ctr.status == "created", ctr.status
assert ctr.labels.get("made-by") == "berth", ctr.labels
ctr.start()
ctr.reload()
assert ctr.status == "running", ctr.status
procs = ctr.top()["Processes"]
assert any("sleep" in p[-1] for p in procs), procs

payload = b"hi from python\n"
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    entry = tarfile.TarInfo("hello.txt")
    entry.size = len(payload)
    t.addfile(entry, io.BytesIO(payload))
assert ctr.put_archive("/tmp", buf.getvalue()) is True
bits, stat = ctr.get_archive("/tmp/hello.txt")
assert stat["name"] == "hello.txt" and stat["size"] == len(payload), stat
with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
    got = t.extractfile("hello.txt").read()
assert got == payload, got
assert {"Path": "/tmp/hello.txt", "Kind": 1} in ctr.diff(), ctr.diff()
try:
    ctr.get_archive("/nosuch")
    raise AssertionError("a missing path must be a 404")
except docker.errors.NotFound:
    pass

ctr.stop(timeout=1)
ctr.reload()
assert ctr.status == "exited", ctr.status
assert ctr.wait()["StatusCode"] == ctr.attrs["State"]["ExitCode"]
ctr.remove()
try:
    client.containers.get(name)
    raise AssertionError("a removed container must be a 404")
except docker.errors.NotFound:
    pass

# Prunes and disk usage answer in Docker's shapes.
# A container created through this service is its prune's to take once the
# request that made it is over, as with dockerd.
made = client.containers.create("bb:latest", ["true"])
deleted = client.containers.prune()["ContainersDeleted"] or []
assert made.id in deleted, deleted
assert "SpaceReclaimed" in client.images.prune()
df = client.df()
assert [i for i in df["Images"] if "bb:latest" in (i["RepoTags"] or [])], df["Images"]
print("docker-py: every check passed")

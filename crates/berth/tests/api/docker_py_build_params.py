"""docker-py sends /build every parameter dockerd takes, reads stats with
networks and blkio, asks for platforms on create and pull, and reads
a name's registry data (/distribution).

Usage: docker_py_build_params.py BASE_URL REGISTRY
Image `bb` (busybox, linux/amd64) is in the store and in REGISTRY as
REGISTRY/plat/bb:1. The last line says all passed.
"""
import io
import sys
import tarfile

import docker

base_url, registry = sys.argv[1], sys.argv[2]
client = docker.DockerClient(base_url=base_url, version="auto", timeout=120)


def context(dockerfile):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        info = tarfile.TarInfo("Dockerfile")
        data = dockerfile.encode()
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def api_error(fn, status):
    try:
        out = fn()
        # A streamed answer may carry its error in the stream instead.
        if not isinstance(out, (dict, list, str, bytes)) and out is not None:
            out = list(out)
        raise AssertionError(f"expected HTTP {status}, got {out!r}")
    except docker.errors.APIError as e:
        assert e.status_code == status, (e.status_code, str(e))
        return str(e)


# Every parameter at once: labels, extra hosts, a bigger /dev/shm, no
# network, rm/forcerm, pull=False, the platform, cache sources.
df = (
    "FROM bb\n"
    "RUN cat /etc/hosts > /hosts && df -k /dev/shm | tail -1 > /shm && ls /sys/class/net > /nets\n"
)
image, logs = client.images.build(
    fileobj=context(df), custom_context=True, tag="pyparams:1",
    labels={"made.by": "docker-py"}, extra_hosts={"gw.test": "10.1.2.3", "v6.test": "fd00::1"},
    shmsize=128 * 1024 * 1024, network_mode="none", rm=True, forcerm=True, pull=False,
    platform="linux/amd64", cache_from=["bb", "pyparams:0"],
)
assert "pyparams:1" in image.tags, image.tags
assert image.labels.get("made.by") == "docker-py", image.labels
hosts = client.containers.run("pyparams:1", ["cat", "/hosts"], remove=True).decode()
assert "10.1.2.3\tgw.test" in hosts and "fd00::1\tv6.test" in hosts, hosts
shm = client.containers.run("pyparams:1", ["cat", "/shm"], remove=True).decode().split()
assert shm[1] == str(128 * 1024), shm
nets = client.containers.run("pyparams:1", ["cat", "/nets"], remove=True).decode().split()
assert nets == ["lo"], nets
# Without shmsize: Docker's 64 MiB.
image2, _ = client.images.build(fileobj=context("FROM bb\nRUN df -k /dev/shm | tail -1 > /shm\n"),
                                custom_context=True, tag="pyparams:2")
shm = client.containers.run("pyparams:2", ["cat", "/shm"], remove=True).decode().split()
assert shm[1] == str(64 * 1024), shm

# q: the stream says only the image ID.
msgs = list(client.api.build(fileobj=context(df), custom_context=True, quiet=True, decode=True))
streams = "".join(m.get("stream", "") for m in msgs)
assert streams.startswith("sha256:") and streams.count("\n") == 1, streams
assert client.images.get(streams.strip()).id == streams.strip()

# What cannot be done is a 400 with a message saying why.
msg = api_error(lambda: client.api.build(path="https://example.invalid/repo.git"), 400)
assert "remote build context" in msg, msg
msg = api_error(lambda: client.api.build(fileobj=context(df), custom_context=True, shmsize=-1), 400)
assert "shmsize" in msg, msg
msg = api_error(lambda: client.api.build(fileobj=context(df), custom_context=True,
                                         extra_hosts=["nohost"]), 400)
assert "add-host" in msg, msg
msg = api_error(lambda: client.api.build(fileobj=context(df), custom_context=True,
                                         network_mode="container:x"), 400)
assert "network mode" in msg, msg

# platform on /containers/create: the image's own works; another is not
# this image (404, as dockerd says it).
c = client.containers.create("bb", ["true"], platform="linux/amd64")
c.remove()
try:
    client.containers.create("bb", ["true"], platform="linux/arm64")
    raise AssertionError("an arm64 create of an amd64 image must fail")
except docker.errors.NotFound as e:
    assert "platform" in str(e) or "No such image" in str(e), str(e)

# platform on /images/create.
img = client.images.pull(f"{registry}/plat/bb", tag="1", platform="linux/amd64")
assert f"{registry}/plat/bb:1" in img.tags, img.tags
# A pull fails inside its stream (the answer is 200 by then), as dockerd's.
msgs = list(client.api.pull(f"{registry}/plat/bb", tag="1", platform="linux/arm64", stream=True, decode=True))
errors = [m["error"] for m in msgs if "error" in m]
assert errors and "does not match the specified platform" in errors[0], msgs

# /distribution/{name}/json: the registry's descriptor and platforms,
# nothing pulled; a name the registry does not have is a 404.
pushed = client.images.get(f"{registry}/plat/bb:1").attrs["RepoDigests"]
data = client.images.get_registry_data(f"{registry}/plat/bb:1")
assert data.id.startswith("sha256:") and any(d.endswith(data.id) for d in pushed), (data.id, pushed)
assert data.attrs["Descriptor"]["mediaType"].endswith("manifest.v1+json"), data.attrs
assert data.attrs["Descriptor"]["size"] > 0, data.attrs
assert data.attrs["Platforms"] == [{"architecture": "amd64", "os": "linux"}], data.attrs
assert data.has_platform("linux/amd64") and not data.has_platform("linux/arm64")
try:
    client.images.get_registry_data(f"{registry}/plat/bb:absent")
    raise AssertionError("a missing tag was found")
except docker.errors.NotFound as e:
    assert "not found" in str(e), str(e)

# stats: networks on the default bridge network, blkio fields.
c = client.containers.run("bb", ["sleep", "300"], detach=True)
s = c.stats(stream=False)
assert "eth0" in s.get("networks", {}), s.get("networks")
for k in ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped", "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"):
    assert isinstance(s["networks"]["eth0"][k], int), (k, s["networks"])
assert "lo" not in s["networks"], s["networks"]
b = s["blkio_stats"]
assert "io_service_bytes_recursive" in b and "io_serviced_recursive" in b, b
for e in b["io_service_bytes_recursive"] or []:
    assert set(e) == {"major", "minor", "op", "value"}, e
c.remove(force=True)
c = client.containers.run("bb", ["sleep", "300"], detach=True, network_mode="none")
s = c.stats(stream=False)
assert "networks" not in s, s
c.remove(force=True)

print("docker-py build params: every check passed")

"""docker-py's HostConfig fields that map to berth's run options reach the
container through `POST /containers/create`: ShmSize, LogConfig,
VolumesFrom, StorageOpt, BlkioWeight, the Blkio device limits,
DeviceCgroupRules, Sysctls, CpusetCpus, OomScoreAdj, PidMode and IpcMode.

Usage: docker_py_hostconfig.py BASE_URL
Image `bb` (busybox) is in the store. Every step checks what it got; the
last line says all passed.
"""
import os
import sys

import docker

client = docker.DockerClient(base_url=sys.argv[1], version="auto", timeout=120)


def shm_line(out):
    lines = [l for l in out.decode().splitlines() if " /dev/shm " in l]
    assert len(lines) == 1, out
    return lines[0]


def refused(words, **kwargs):
    try:
        c = client.containers.create("bb", "true", **kwargs)
        c.remove()
    except docker.errors.APIError as e:
        assert words in str(e.explanation), (words, e.explanation)
        return
    raise AssertionError(f"create with {kwargs} must be refused ({words})")


# ShmSize: the size of the container's /dev/shm, shown by inspect; 0 or
# absent is Docker's 64 MiB.
out = client.containers.run("bb", ["cat", "/proc/mounts"], shm_size="96m", remove=True)
assert "size=98304k" in shm_line(out), shm_line(out)
c = client.containers.create("bb", "true", shm_size=100663296)
assert c.attrs["HostConfig"]["ShmSize"] == 100663296, c.attrs["HostConfig"]["ShmSize"]
c.remove()
out = client.containers.run("bb", ["cat", "/proc/mounts"], remove=True)
assert "size=65536k" in shm_line(out), shm_line(out)
c = client.containers.create("bb", "true")
assert c.attrs["HostConfig"]["ShmSize"] == 67108864, c.attrs["HostConfig"]["ShmSize"]
c.remove()

# LogConfig: the none driver keeps no log, and says so when asked for it.
c = client.containers.run(
    "bb", ["echo", "unseen"], detach=True,
    log_config=docker.types.LogConfig(type="none"),
)
c.wait()
assert c.attrs["HostConfig"]["LogConfig"]["Type"] == "none", c.attrs["HostConfig"]["LogConfig"]
try:
    c.logs()
    raise AssertionError("logs of a container without a log must fail")
except docker.errors.APIError as e:
    assert "does not support reading" in str(e.explanation), e.explanation
c.remove()
# json-file's max-size/max-file rotate the log; other options are refused.
c = client.containers.create(
    "bb", "true", log_config=docker.types.LogConfig(type="json-file", config={"max-size": "1m", "max-file": "2"})
)
assert c.attrs["HostConfig"]["LogConfig"]["Config"] == {"max-size": "1m", "max-file": "2"}, c.attrs["HostConfig"]
c.remove()
refused("unknown log opt 'bogus'", log_config=docker.types.LogConfig(type="json-file", config={"bogus": "1"}))
refused("max-size must be a positive number", log_config=docker.types.LogConfig(type="json-file", config={"max-size": "0"}))

# VolumesFrom: the volumes of another container, at the same paths.
src = client.api.create_container("bb", ["sh", "-c", "echo shared > /data/f"], volumes=["/data"],
                                  name="pyvolsrc")
client.api.start(src)
assert client.api.wait(src)["StatusCode"] == 0
out = client.containers.run("bb", ["cat", "/data/f"], volumes_from=["pyvolsrc"], remove=True)
assert out == b"shared\n", out
ro = client.containers.create("bb", "true", volumes_from=["pyvolsrc:ro"])
assert ro.attrs["HostConfig"]["VolumesFrom"] == ["pyvolsrc:ro"], ro.attrs["HostConfig"]["VolumesFrom"]
assert [m["RW"] for m in ro.attrs["Mounts"]] == [False], ro.attrs["Mounts"]
ro.remove()
client.api.remove_container(src, v=True)

# StorageOpt: refused in Docker's overlay2 words (no quotas here).
refused("--storage-opt is supported only", storage_opt={"size": "1G"})

# BlkioWeight and the device limits, with the CLI's rules and Docker's shapes.
# A weight is applied where the host's blkio controller has weights and
# discarded with Docker's warning where it has none.
def host_has_blkio_weights():
    if any(os.path.exists(f"/sys/fs/cgroup/blkio/{f}") for f in ("blkio.weight", "blkio.bfq.weight")):
        return True
    try:
        return "io" in open("/sys/fs/cgroup/cgroup.controllers").read()
    except OSError:
        return False


weights = host_has_blkio_weights()
made = client.api.create_container("bb", "true", host_config=client.api.create_host_config(blkio_weight=300))
shown = client.api.inspect_container(made["Id"])["HostConfig"]["BlkioWeight"]
if weights:
    assert shown == 300, shown
else:
    assert any("Weight discarded" in w for w in made["Warnings"] or []), made["Warnings"]
    assert shown == 0, shown
client.api.remove_container(made["Id"])
refused("invalid weight for device", blkio_weight_device=[{"Path": "/dev/null", "Weight": 5}])
dev = next(
    f"/dev/{n}" for n in sorted(os.listdir("/sys/block"))
    if not n.startswith(("loop", "ram")) and os.path.exists(f"/dev/{n}")
)
c = client.containers.create(
    "bb", "true",
    device_read_bps=[{"Path": dev, "Rate": 1048576}],
    device_write_iops=[{"Path": dev, "Rate": 77}],
    device_cgroup_rules=["c 42:* rmw"],
)
hc = c.attrs["HostConfig"]
assert hc["BlkioDeviceReadBps"] == [{"Path": dev, "Rate": 1048576}], hc["BlkioDeviceReadBps"]
assert hc["BlkioDeviceWriteIOps"] == [{"Path": dev, "Rate": 77}], hc["BlkioDeviceWriteIOps"]
assert hc["DeviceCgroupRules"] == ["c 42:* rmw"], hc["DeviceCgroupRules"]
c.remove()
refused("is not a block device", device_read_iops=[{"Path": "/dev/null", "Rate": 10}])

# Sysctls, cpusets, the OOM score and the namespaces reach the container.
out = client.containers.run(
    "bb", ["sh", "-c", "cat /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj; grep Cpus_allowed_list /proc/self/status"],
    sysctls={"net.ipv4.ip_forward": "1"}, cpuset_cpus="0", oom_score_adj=500, remove=True,
)
assert out.decode().split() == ["1", "500", "Cpus_allowed_list:", "0"], out
with open("/proc/1/comm") as f:
    host_init = f.read().encode()
out = client.containers.run("bb", ["cat", "/proc/1/comm"], pid_mode="host", remove=True)
assert out == host_init, (out, host_init)
donor = client.containers.run("bb", ["sleep", "60"], ipc_mode="shareable", detach=True)
donor.exec_run(["sh", "-c", "echo py > /dev/shm/x"])
out = client.containers.run(
    "bb", ["sh", "-c", "ps -o comm | grep -c sleep; cat /dev/shm/x"],
    pid_mode=f"container:{donor.id}", ipc_mode=f"container:{donor.id}", remove=True,
)
assert out == b"1\npy\n", out
donor.remove(force=True)

# What berth has no setting for is refused by name, never dropped.
refused("HostConfig.CpuCount is not supported", cpu_count=2)
refused("HostConfig.DeviceRequests is not supported",
        device_requests=[docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])])

assert client.containers.list(all=True) == [], client.containers.list(all=True)
print("docker-py hostconfig: every check passed")

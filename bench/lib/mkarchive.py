#!/usr/bin/python3
"""Write a docker-archive (`docker save` format) without any engine.

  mkarchive.py many OUT.tar COUNT
      COUNT distinct one-layer images bench/img0000 … (each layer holds
      one small file whose content is the image's number).
  mkarchive.py big OUT.tar NAME LAYERS MIB
      one image of LAYERS layers of random (incompressible) data,
      MIB MiB in all.
"""
import hashlib
import io
import json
import os
import sys
import tarfile

CREATED = "2024-01-01T00:00:00Z"


def layer_tar(files):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            ti.mtime = 1704067200
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def add_bytes(out, name, data):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = 0o644
    ti.mtime = 1704067200
    out.addfile(ti, io.BytesIO(data))


def write_image(out, tag, layers, manifest):
    diff_ids, paths = [], []
    for data in layers:
        h = hashlib.sha256(data).hexdigest()
        add_bytes(out, f"{h}/layer.tar", data)
        diff_ids.append("sha256:" + h)
        paths.append(f"{h}/layer.tar")
    config = {
        "architecture": "amd64", "os": "linux", "created": CREATED,
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": "bench layer"} for _ in layers],
    }
    cb = json.dumps(config, separators=(",", ":")).encode()
    ch = hashlib.sha256(cb).hexdigest()
    add_bytes(out, f"{ch}.json", cb)
    manifest.append({"Config": f"{ch}.json", "RepoTags": [tag], "Layers": paths})


def main():
    mode, path = sys.argv[1], sys.argv[2]
    manifest = []
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as out:
        if mode == "many":
            for i in range(int(sys.argv[3])):
                data = layer_tar([(f"id/{i:04d}", f"image {i}\n".encode())])
                write_image(out, f"bench/img{i:04d}:latest", [data], manifest)
        elif mode == "big":
            name, n, mib = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
            per = mib * 1024 * 1024 // n
            layers = []
            for li in range(n):
                files = [(f"l{li}/f{j:03d}", os.urandom(1024 * 1024)) for j in range(per // (1024 * 1024))]
                layers.append(layer_tar(files))
            write_image(out, f"{name}:latest", layers, manifest)
        else:
            sys.exit("mode: many | big")
        add_bytes(out, "manifest.json", json.dumps(manifest).encode())


if __name__ == "__main__":
    main()

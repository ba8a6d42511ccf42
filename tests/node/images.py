#!/usr/bin/env python3
"""Build the real-node tests' container images as docker-archive tarballs (no registry is reachable).

    images.py FAKE_BINARY BUSYBOX_BINARY OUT_DIR

writes OUT_DIR/pause.tar (local/pause:1: the sandbox's pause) and OUT_DIR/node.tar (local/vmmem-node:1:
busybox-static with its applets, plus the launcher's fake processes named like KubeVirt's: see
fake/vmmem-fake.c). `ctr -n k8s.io images import FILE` loads them; CRI then knows them as
docker.io/local/NAME:1, and pods use them with imagePullPolicy: Never.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

FAKE_NAMES = ["virt-launcher-monitor", "virt-launcher", "virtqemud", "virtlogd",
              "qemu-system-x86_64", "memhold", "virt-tail", "pause"]


def add_file(tar, name, data, mode=0o755):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    tar.addfile(info)


def add_link(tar, name, target):
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    tar.addfile(info)


def busybox_applets(busybox):
    out = subprocess.run([busybox, "--list"], check=True, capture_output=True, text=True).stdout
    return sorted(set(a for a in out.split() if a and "/" not in a))


def layer(build):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        build(tar)
    return buf.getvalue()


def archive(path, tag, layer_tar, cmd):
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    config = json.dumps({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
    with tarfile.open(path + ".tmp", mode="w", format=tarfile.GNU_FORMAT) as tar:
        add_file(tar, "layer.tar", layer_tar, 0o644)
        add_file(tar, config_name, config, 0o644)
        add_file(tar, "manifest.json", manifest, 0o644)
    os.replace(path + ".tmp", path)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    fake_path, busybox_path, out = sys.argv[1:]
    fake = open(fake_path, "rb").read()
    busybox = open(busybox_path, "rb").read()
    os.makedirs(out, exist_ok=True)

    def pause_layer(tar):
        add_file(tar, "pause", fake)

    def node_layer(tar):
        for d in ["bin", "tmp", "proc", "sys", "dev", "etc", "host"]:
            add_dir(tar, d)
        add_file(tar, "bin/busybox", busybox)
        add_file(tar, "bin/vmmem-fake", fake)
        for applet in busybox_applets(busybox_path):
            if applet != "busybox":
                add_link(tar, "bin/" + applet, "busybox")
        for name in FAKE_NAMES:
            add_link(tar, "bin/" + name, "vmmem-fake")
        add_file(tar, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\nqemu:x:107:107:qemu:/:/bin/sh\n", 0o644)
        add_file(tar, "etc/group", b"root:x:0:\nqemu:x:107:\n", 0o644)

    archive(os.path.join(out, "pause.tar"), "local/pause:1", layer(pause_layer), ["/pause"])
    archive(os.path.join(out, "node.tar"), "local/vmmem-node:1", layer(node_layer), ["/bin/sh"])


if __name__ == "__main__":
    main()

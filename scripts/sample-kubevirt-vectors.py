#!/usr/bin/env python3
"""Copy a small, deterministic sample of KubeVirt overhead vectors for the simulator's test.

usage: scripts/sample-kubevirt-vectors.py VECTORS_DIR sim/tests/fixtures/kubevirt-vectors [PER_FILE]

VECTORS_DIR holds one `<ref>.jsonl.gz` per KubeVirt release: VMIs and the overhead KubeVirt's own
Go code returned for each. From each file this keeps every k-th VMI that uses no network binding
plugin (PER_FILE of them, default 24) plus the first two that do (the simulator refuses those),
without the binding-plugin map the kept VMIs do not need, as `<ref>.jsonl`.
"""
import glob
import gzip
import json
import os
import sys


def uses_binding(vector):
    devices = vector["vmi"]["spec"]["domain"].get("devices") or {}
    return any("binding" in i for i in devices.get("interfaces") or [])


def main():
    src, out = sys.argv[1], sys.argv[2]
    per_file = int(sys.argv[3]) if len(sys.argv) > 3 else 24
    for path in sorted(glob.glob(os.path.join(src, "*.jsonl.gz"))):
        ref = os.path.basename(path)[: -len(".jsonl.gz")]
        with gzip.open(path, "rt") as f:
            rows = [json.loads(line) for line in f]
        plain = [r for r in rows if not uses_binding(r)]
        binding = [r for r in rows if uses_binding(r)]
        step = max(1, len(plain) // per_file)
        picked = plain[::step][:per_file] + binding[:2]
        with open(os.path.join(out, ref + ".jsonl"), "w") as w:
            for r in picked:
                r = dict(r)
                r.pop("networkBindingPlugins", None)
                w.write(json.dumps(r, separators=(",", ":"), sort_keys=True) + "\n")
        print(f"{ref}: {len(picked)} of {len(rows)}")


if __name__ == "__main__":
    main()

"""Regenerate the Python modules of proto/module.proto into neurtmp/ingest/proto/.

    python proto/generate.py            # needs grpcio-tools (pip install -e '.[test]')

The generated service module imports its messages module by package path, so the pair
works from inside the neurtmp package. tests/ingest/test_grpc.py fails when the committed
modules differ from what this writes.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROTO = ROOT / "proto" / "module.proto"
TARGET = ROOT / "neurtmp" / "ingest" / "proto"
PACKAGE = "neurtmp.ingest.proto"


def generate(out: pathlib.Path) -> list[pathlib.Path]:
    """Write module_pb2.py and module_pb2_grpc.py into `out`; returns their paths."""
    from grpc_tools import protoc

    code = protoc.main(["grpc_tools.protoc", f"-I{PROTO.parent}", f"--python_out={out}", f"--grpc_python_out={out}",
                        str(PROTO)])
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    service = out / "module_pb2_grpc.py"
    service.write_text(service.read_text().replace("import module_pb2 as module__pb2",
                                                   f"from {PACKAGE} import module_pb2 as module__pb2"))
    return [out / "module_pb2.py", service]


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(pathlib.Path(tmp)):
            (TARGET / path.name).write_text(path.read_text())
            print(f"wrote {TARGET / path.name}", file=sys.stderr)


if __name__ == "__main__":
    main()

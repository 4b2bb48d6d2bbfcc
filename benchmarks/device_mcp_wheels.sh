#!/usr/bin/env bash
# Builds .whlmcp/ (git-excluded) for the MCP server's GPU test on the device machine: the wheels of
# .whl/ (../shared/tools/device-wheels.sh) except bitsandbytes, plus the mcp SDK and what it imports
# that the device image lacks. Python 3.12 x86_64 wheels, versions as in this checkout's .venv.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
[ -d .whl ] || { echo "run ../shared/tools/device-wheels.sh first (it fills .whl/)"; exit 1; }
grep -qx '/.whlmcp/' .git/info/exclude 2>/dev/null || echo '/.whlmcp/' >> .git/info/exclude
rm -rf .whlmcp && mkdir .whlmcp
cp .whl/*.whl .whlmcp/ && rm -f .whlmcp/bitsandbytes-*
pkgs=(mcp mcp-types httpx2 httpcore2 truststore idna anyio opentelemetry-api pyjwt python-multipart sse-starlette
      starlette uvicorn jsonschema jsonschema-specifications referencing rpds-py cryptography cffi pycparser)
for p in "${pkgs[@]}"; do
  v=$(.venv/bin/python -m pip show "$p" 2>/dev/null | awk '/^Version/{print $2}')
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_34_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whlmcp "$p${v:+==$v}"
done
du -sh .whlmcp

#!/usr/bin/python3
"""Prints the GPUs CUDA itself can see, through the driver API (libcuda.so.1, via ctypes: no
CUDA toolkit needed). Used as a session command by tools/gpu-smoke.sh to show that a session
sees exactly the GPU Gantry gave it."""
import ctypes
import os
import sys

print("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
try:
    cuda = ctypes.CDLL("libcuda.so.1")
except OSError as e:
    print(f"no CUDA driver here ({e})", flush=True)
    sys.exit(0)
if cuda.cuInit(0) != 0:
    print("cuInit failed", flush=True)
    sys.exit(1)
count = ctypes.c_int()
cuda.cuDeviceGetCount(ctypes.byref(count))
print(f"CUDA sees {count.value} device(s)", flush=True)
for i in range(count.value):
    dev = ctypes.c_int()
    cuda.cuDeviceGet(ctypes.byref(dev), i)
    name = ctypes.create_string_buffer(256)
    cuda.cuDeviceGetName(name, 256, dev)
    uuid = (ctypes.c_ubyte * 16)()
    cuda.cuDeviceGetUuid(uuid, dev)
    h = bytes(uuid).hex()
    print(f"CUDA device {i}: {name.value.decode()} GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}",
          flush=True)

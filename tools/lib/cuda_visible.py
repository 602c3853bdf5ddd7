#!/usr/bin/python3
"""Prints the GPUs CUDA itself can see, through the driver API (libcuda.so.1, via ctypes: no
CUDA toolkit needed). Used as a session command by tools/gpu-smoke.sh to show that a session
sees exactly the GPU Gantry gave it. With --hold-mib N it then allocates N MiB on its first
device, and it stays alive for --hold-s seconds, so GPU memory per session can be checked."""
import argparse
import ctypes
import os
import sys
import time


def show_devices(hold_mib):
    print("CUDA_VISIBLE_DEVICES=" + os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>"), flush=True)
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        print(f"no CUDA driver here ({e})", flush=True)
        return 0
    if cuda.cuInit(0) != 0:
        print("cuInit failed", flush=True)
        return 1
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
    if hold_mib and count.value:
        dev, ctx, ptr = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_uint64()
        cuda.cuDeviceGet(ctypes.byref(dev), 0)
        rc = cuda.cuCtxCreate_v2(ctypes.byref(ctx), 0, dev) or \
            cuda.cuMemAlloc_v2(ctypes.byref(ptr), ctypes.c_size_t(hold_mib << 20))
        print(f"holding {hold_mib} MiB on device 0" if rc == 0 else f"allocation failed: CUDA error {rc}",
              flush=True)
    return 0


args = argparse.ArgumentParser()
args.add_argument("--hold-mib", type=int, default=0)
args.add_argument("--hold-s", type=float, default=0)
opts = args.parse_args()
rc = show_devices(opts.hold_mib)
time.sleep(opts.hold_s)  # The allocation, if any, lives as long as this process.
sys.exit(rc)

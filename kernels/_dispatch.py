"""Which path to take: the CUDA kernel for CuPy arrays, the CPU paths otherwise."""


def on_gpu(x):
    return type(x).__module__.split(".")[0] == "cupy"

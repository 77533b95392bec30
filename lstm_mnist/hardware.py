"""What this machine can do, asked before a run starts: bfloat16 matmuls, memory for the sizes asked."""
import os
import re

from lstm_mnist.errors import ConfigError


def check(cfg):
    """Refuse settings this machine cannot run (ConfigError naming them) before TensorFlow tries."""
    check_memory(cfg)
    if cfg.precision == "bf16" and cpu_lacks_bf16():
        raise ConfigError('precision = bf16 needs a CPU with AVX512-BF16 or AMX, and this one has neither '
                          '(/proc/cpuinfo): without them bfloat16 is emulated, slower than float32; use '
                          '--precision=fp32')


def cpu_lacks_bf16(cpuinfo="/proc/cpuinfo"):
    """True where /proc/cpuinfo lists neither AVX512-BF16 nor AMX-BF16; False where it cannot tell."""
    try:
        with open(cpuinfo) as f:
            flags = set(re.search(r"^flags\s*:(.*)$", f.read(), flags=re.M).group(1).split())
    except (OSError, AttributeError):
        return False
    return not flags & {"avx512_bf16", "amx_bf16"}


def memory_estimate(cfg):
    """Bytes a training step needs, roughly: the weights four times over (themselves, their
    gradients, Adam's two slots) and each time step's activations kept for the backward pass."""
    weights = ((cfg.n_input + cfg.n_hidden + 1) * 4 * cfg.n_hidden
               + (cfg.num_layers - 1) * (2 * cfg.n_hidden + 1) * 4 * cfg.n_hidden + (cfg.n_hidden + 1) * cfg.n_classes)
    activations = cfg.batch_size * cfg.n_steps * (cfg.n_input + 12 * cfg.n_hidden * cfg.num_layers)
    return 4 * (4 * weights + 2 * activations)


def available_memory():
    """Bytes of memory free for this process (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            return 1024 * int(re.search(r"^MemAvailable:\s+(\d+) kB", f.read(), flags=re.M).group(1))
    except (OSError, AttributeError):
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else None


def check_memory(cfg):
    """Refuse sizes that cannot fit before TensorFlow tries (and the process is killed)."""
    needed, free = memory_estimate(cfg), available_memory()
    if free and needed > free:
        raise ConfigError(f"n_hidden = {cfg.n_hidden}, batch_size = {cfg.batch_size}: a training step needs "
                          f"about {needed / 2**30:.0f} GiB, more than the {free / 2**30:.0f} GiB free here; "
                          f"choose smaller sizes")

"""What NVML says about the GPUs: the seam the daemon uses to see processes on a GPU, and the
metrics sampler to read each GPU's utilization, memory, temperature and power.

Only this module imports ``pynvml``; tests swap :class:`GpuProbe` / :class:`GpuStats` for a
fake (or put a fake ``pynvml`` module in ``sys.modules``). With no NVML (no driver, virtual
GPUs) there is no probe and nothing is invented; a field NVML cannot give is left out.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger(__name__)


class GpuProbe(Protocol):
    def processes(self, indices: list[int]) -> set[int]:
        """Pids holding a compute or graphics context on these GPUs."""
        ...


class GpuStats(Protocol):
    def stats(self, indices: list[int]) -> list[dict[str, Any]]:
        """Per GPU, in order: ``index`` and whichever of ``name``, ``utilization`` (%),
        ``memory_used_bytes``, ``memory_total_bytes``, ``temperature_c``, ``power_w`` it knows."""
        ...


class NvmlProbe:
    def __init__(self) -> None:
        import pynvml

        self._nvml = pynvml
        pynvml.nvmlInit()

    def processes(self, indices: list[int]) -> set[int]:
        nvml = self._nvml
        pids: set[int] = set()
        for index in indices:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            for query in (nvml.nvmlDeviceGetComputeRunningProcesses,
                          nvml.nvmlDeviceGetGraphicsRunningProcesses):
                try:
                    pids.update(p.pid for p in query(handle))
                except nvml.NVMLError as exc:  # e.g. not supported on this GPU
                    log.debug("NVML process query failed on GPU %s: %s", index, exc)
        return pids

    def stats(self, indices: list[int]) -> list[dict[str, Any]]:
        return [self._device(index) for index in indices]

    def _device(self, index: int) -> dict[str, Any]:
        nvml = self._nvml
        gpu: dict[str, Any] = {"index": index}
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except nvml.NVMLError as exc:
            log.debug("NVML has no GPU %s: %s", index, exc)
            return gpu
        self._read(gpu, "name", lambda: _text(nvml.nvmlDeviceGetName(handle)))
        self._read(gpu, "utilization", lambda: int(nvml.nvmlDeviceGetUtilizationRates(handle).gpu))
        memory = self._read(gpu, None, lambda: nvml.nvmlDeviceGetMemoryInfo(handle))
        if memory is not None:
            gpu["memory_used_bytes"] = int(memory.used)
            gpu["memory_total_bytes"] = int(memory.total)
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        self._read(gpu, "temperature_c", lambda: int(nvml.nvmlDeviceGetTemperature(handle, sensor)))
        self._read(gpu, "power_w", lambda: round(nvml.nvmlDeviceGetPowerUsage(handle) / 1000, 1))
        return gpu

    def _read(self, gpu: dict[str, Any], key: str | None, query: Callable[[], Any]) -> Any:
        """One NVML query; a field this GPU does not support is simply left out."""
        try:
            value = query()
        except self._nvml.NVMLError as exc:
            log.debug("NVML %s on GPU %s: %s", key, gpu["index"], exc)
            return None
        if key is not None:
            gpu[key] = value
        return value


def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def gpu_stats(gpu_source: str) -> GpuStats | None:
    """A source of per-GPU stats when the inventory's GPUs are real ones (NVML)."""
    return _nvml_probe(gpu_source)


def gpu_probe(gpu_source: str) -> GpuProbe | None:
    """An NVML probe when the inventory's GPUs are real ones."""
    return _nvml_probe(gpu_source)


def _nvml_probe(gpu_source: str) -> NvmlProbe | None:
    if gpu_source != "nvml":
        return None
    try:
        return NvmlProbe()
    except Exception as exc:  # the driver went away since start-up
        log.warning("NVML unavailable, GPU process checks and stats disabled: %s", exc)
        return None

import sys
import types

from jobyard.config import Config
from jobyard.daemon.inventory import detect_inventory, nvml_gpu_count


def fake_nvml(count: int | Exception) -> types.ModuleType:
    mod = types.ModuleType("pynvml")
    calls = []

    def init():
        calls.append("init")
        if isinstance(count, Exception):
            raise count

    mod.nvmlInit = init
    mod.nvmlShutdown = lambda: calls.append("shutdown")
    mod.nvmlDeviceGetCount = lambda: count
    mod.calls = calls
    return mod


def test_gpus_come_from_nvml_when_present(monkeypatch, tmp_path):
    nvml = fake_nvml(2)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    inv = detect_inventory(Config(data_dir=tmp_path, cpus=3, memory_mb=1000))
    assert inv.gpus == [0, 1] and inv.gpu_source == "nvml" and nvml.calls == ["init", "shutdown"]
    assert inv.capacity.cpus == 3 and inv.capacity.memory_mb == 1000


def test_no_driver_means_no_gpus_and_virtual_gpus_override(monkeypatch, tmp_path):
    monkeypatch.setitem(
        sys.modules, "pynvml", fake_nvml(RuntimeError("NVML Shared Library Not Found"))
    )
    assert nvml_gpu_count() == 0
    assert detect_inventory(Config(data_dir=tmp_path)).gpu_source == "none"
    virtual = detect_inventory(Config(data_dir=tmp_path, virtual_gpus=3))
    assert virtual.gpus == [0, 1, 2] and virtual.gpu_source == "virtual"


def test_nvml_probe_lists_compute_and_graphics_processes(monkeypatch):
    from jobyard.telemetry.gpu import gpu_probe

    nvml = fake_nvml(2)
    nvml.NVMLError = type("NVMLError", (Exception,), {})
    procs = {0: ([types.SimpleNamespace(pid=11)], [types.SimpleNamespace(pid=12)]), 1: ([], [])}
    nvml.nvmlDeviceGetHandleByIndex = lambda i: i
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda h: procs[h][0]

    def graphics(h):
        if h == 1:
            raise nvml.NVMLError("Not Supported")
        return procs[h][1]

    nvml.nvmlDeviceGetGraphicsRunningProcesses = graphics
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    probe = gpu_probe("nvml")
    assert probe.processes([0]) == {11, 12} and probe.processes([1]) == set()
    assert gpu_probe("virtual") is None

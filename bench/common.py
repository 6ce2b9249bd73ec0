"""What every benchmark reports about where it ran: the machine and the package versions."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> dict[str, object]:
    """Return CPU model, cores, memory, system and the load average (other work skews timings)."""
    model = platform.processor() or "unknown"
    memory_gb = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "system": platform.platform(),
            "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()]}


def versions(*packages: str) -> dict[str, str]:
    """Return Python's version and each installed package's."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def write_report(path: Path, report: dict[str, object]) -> None:
    """Write the machine-readable results next to the printed table."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {path}")

"""A listener plugin in Python: watches how many instances of each service are
healthy, logs the count on every change, and warns when it falls below the
plugin's `min_healthy` setting (default 1).

The same plugin is in examples/c and examples/javascript; the host's tests
check that all three say the same thing about the same events.

Build (scripts/build-plugins.sh does exactly this):
    componentize-py -d ../../wit/nacre-plugin-0.1.0 -w listener componentize app -o python_listener.wasm
Try:
    nacre plugin test listener.toml --event event.json

For editor completion, `componentize-py -d ../../wit/nacre-plugin-0.1.0 -w listener
bindings .` writes the `wit_world` package this module imports.
"""

from wit_world import WitWorld
from wit_world.imports import host
from wit_world.imports.types import ChangeEvent, ChangeKinds, LogLevel


def min_healthy() -> int:
    """The plugin's `min_healthy` setting from its manifest, or 1."""
    value = host.config_get("min_healthy")
    try:
        return max(0, int(value)) if value is not None else 1
    except ValueError:
        return 1


def log_counts(level: LogLevel, message: str, service: str, healthy: int, total: int) -> None:
    fields = [("service", service), ("healthy", str(healthy)), ("total", str(total))]
    host.log(level, message, fields)


class WitWorld(WitWorld):
    def on_change(self, event: ChangeEvent) -> None:
        name = event.service.name
        if ChangeKinds.REMOVED in event.kinds:
            log_counts(LogLevel.INFO, f"{name} was removed", name, 0, 0)
            return
        total = len(event.instances)
        healthy = sum(1 for i in event.instances if i.healthy and i.enabled)
        log_counts(LogLevel.INFO, f"{name}: {healthy} of {total} instances healthy", name, healthy, total)
        minimum = min_healthy()
        if healthy < minimum:
            log_counts(
                LogLevel.WARN, f"{name} has fewer than {minimum} healthy instances", name, healthy, total
            )

from collections.abc import Callable, MutableMapping
from typing import Any

from .principal import Principal

class HitPath:
    def __init__(
        self,
        entries: dict[bytes, tuple[float, Principal]],
        clock: Callable[[], float],
        exclude_paths: frozenset[str],
    ) -> None: ...
    def __call__(self, scope: MutableMapping[str, Any], /) -> Principal | None: ...

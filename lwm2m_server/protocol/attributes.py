"""Write-Attributes (``PUT /3/0/9?pmin=10&pmax=60&gt=20``) and the attributes Discover reports.

Notification attributes (TS Core 1.1, 5.1.2): ``pmin``/``pmax``/``epmin``/``epmax`` are non-negative
integer seconds; ``gt``/``lt``/``st`` are numbers and only apply to numeric single-valued resources (or a
resource instance). A parameter without a value (``?pmin``) *clears* that attribute on the client.
Rules checked: pmin <= pmax, epmin <= epmax, st >= 0, lt < gt and lt + 2*st < gt (when set together).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lwm2m_server.protocol.model import ResourceDefinition, ResourceType
from lwm2m_server.protocol.paths import LwM2MPath

ATTRIBUTE_NAMES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")
_INTEGER_NAMES = frozenset({"pmin", "pmax", "epmin", "epmax"})
_NUMERIC_TYPES = frozenset({ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.FLOAT})
_INT = re.compile(r"[0-9]{1,10}")
_NUMBER = re.compile(r"-?[0-9]{1,20}(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?")
MAX_SECONDS = 0xFFFFFFFF


class WriteAttributesError(ValueError):
    """Invalid notification attributes (answered with 4.00 when they come from a request)."""


def _format_number(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class WriteAttributes:
    """Attributes to set (non-None fields) and to clear (``clear``) in one Write-Attributes request."""

    pmin: int | None = None
    pmax: int | None = None
    gt: float | None = None
    lt: float | None = None
    st: float | None = None
    epmin: int | None = None
    epmax: int | None = None
    clear: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "clear", frozenset(self.clear))
        self.validate()

    # ---- checks ----------------------------------------------------------------------------------------
    def validate(self) -> None:
        unknown = self.clear - set(ATTRIBUTE_NAMES)
        if unknown:
            raise WriteAttributesError(f"unknown attribute(s) to clear: {', '.join(sorted(unknown))}")
        for name in ATTRIBUTE_NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if name in self.clear:
                raise WriteAttributesError(f"{name} is both set and cleared")
            if isinstance(value, bool):
                raise WriteAttributesError(f"{name} must be a number, got a bool")
            if name in _INTEGER_NAMES:
                if not isinstance(value, int) or not 0 <= value <= MAX_SECONDS:
                    raise WriteAttributesError(f"{name} must be an integer 0..{MAX_SECONDS} seconds, got {value!r}")
            elif not isinstance(value, int | float) or not math.isfinite(value):
                raise WriteAttributesError(f"{name} must be a finite number, got {value!r}")
        if self.pmin is not None and self.pmax is not None and self.pmin > self.pmax:
            raise WriteAttributesError(f"pmin {self.pmin} is greater than pmax {self.pmax}")
        if self.epmin is not None and self.epmax is not None and self.epmin > self.epmax:
            raise WriteAttributesError(f"epmin {self.epmin} is greater than epmax {self.epmax}")
        if self.st is not None and self.st < 0:
            raise WriteAttributesError(f"st must not be negative, got {self.st}")
        if self.lt is not None and self.gt is not None:
            if not self.lt < self.gt:
                raise WriteAttributesError(f"lt {self.lt} must be less than gt {self.gt}")
            if self.st is not None and not self.lt + 2 * self.st < self.gt:
                raise WriteAttributesError(f"lt + 2*st must be less than gt (lt={self.lt}, st={self.st}, gt={self.gt})")

    def validate_for(self, path: LwM2MPath, resource: ResourceDefinition | None) -> None:
        """Check the attributes make sense on ``path``: gt/lt/st need a numeric single value."""
        numeric = [n for n in ("gt", "lt", "st") if getattr(self, n) is not None]
        if not numeric:
            return
        if path.resource_id is None:
            raise WriteAttributesError(f"{', '.join(numeric)} apply to resources, not to {path}")
        if resource is None:
            return  # unknown resource: let the device decide
        if resource.type not in _NUMERIC_TYPES:
            raise WriteAttributesError(f"{', '.join(numeric)} need a numeric resource; {path} is {resource.type}")
        if resource.multiple and path.resource_instance is None:
            raise WriteAttributesError(f"{', '.join(numeric)} need a single value; {path} is a multiple resource")

    # ---- conversions -----------------------------------------------------------------------------------
    @property
    def is_empty(self) -> bool:
        return not self.clear and all(getattr(self, n) is None for n in ATTRIBUTE_NAMES)

    def as_dict(self) -> dict[str, int | float]:
        """The attributes being set."""
        return {n: getattr(self, n) for n in ATTRIBUTE_NAMES if getattr(self, n) is not None}

    def to_query(self) -> list[str]:
        """CoAP Uri-Query options in a stable order, e.g. ``["pmin=10", "gt=20.5", "st"]``."""
        out: list[str] = []
        for name in ATTRIBUTE_NAMES:
            value = getattr(self, name)
            if value is not None:
                out.append(f"{name}={value if name in _INTEGER_NAMES else _format_number(value)}")
            elif name in self.clear:
                out.append(name)
        return out

    @classmethod
    def from_query(cls, query: Sequence[str]) -> WriteAttributes:
        """Parse Uri-Query options; unknown or duplicate attributes and bad numbers raise."""
        values: dict[str, int | float] = {}
        clear: set[str] = set()
        for item in query:
            name, sep, raw = item.partition("=")
            if name not in ATTRIBUTE_NAMES:
                raise WriteAttributesError(f"unknown attribute {name[:20]!r}")
            if name in values or name in clear:
                raise WriteAttributesError(f"attribute {name!r} given twice")
            if not sep:
                clear.add(name)
                continue
            values[name] = _parse_value(name, raw)
        return cls(**values, clear=frozenset(clear))  # type: ignore[arg-type]

    @classmethod
    def from_link_params(cls, params: Mapping[str, str | None]) -> WriteAttributes:
        """The attributes a Discover answer reports on a link (other link parameters are ignored)."""
        values = {n: _parse_value(n, v) for n, v in params.items() if n in ATTRIBUTE_NAMES and v is not None}
        return cls(**values)  # type: ignore[arg-type]


def _parse_value(name: str, raw: str) -> int | float:
    if name in _INTEGER_NAMES:
        if not _INT.fullmatch(raw):
            raise WriteAttributesError(f"{name} must be a non-negative integer, got {raw[:20]!r}")
        return int(raw)
    if not _NUMBER.fullmatch(raw):
        raise WriteAttributesError(f"{name} must be a number, got {raw[:20]!r}")
    number = float(raw)
    if not math.isfinite(number):
        raise WriteAttributesError(f"{name} must be finite, got {raw[:20]!r}")
    return number


"""A parameter sweep's specification: shared settings, a grid of parameter values, seeds, and how
the (point, seed) members are grouped into evaluation chunks."""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import read_json

GridValue = int | float | str | bool | None

_VALID_KEYS = ("name", "base", "grid", "seeds", "ensemble")
_REQUIRED_KEYS = ("grid", "seeds")
# Row columns that run_sweep writes itself; a grid parameter may not take these names.
_RESERVED_NAMES = ("point", "seed")


@dataclass(frozen=True)
class Member:
    """One evaluation of a sweep: grid point ``point`` (its position in ``SweepSpec.points()``)
    with seed ``seed``; ``index`` is its position in ``SweepSpec.members()`` and ``params`` maps
    each grid parameter name to its value at that point."""

    index: int
    point: int
    seed: int
    params: dict[str, GridValue]


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A sweep: every combination of the ``grid`` values, each run with every seed.

    ``grid`` maps a parameter name (an opaque, usually dotted string such as ``"noise.sigma"``) to
    its values (numbers, strings, bools or None); key order sets the order of the points, the last
    key varying fastest. ``base`` holds settings shared by all points; the engine only stores it.
    ``seeds`` is a list of distinct non-negative ints, or an int n meaning ``range(n)``.
    ``ensemble`` is the number of members handed to the evaluation function at once; an
    evaluation that splits them over devices needs every chunk to split (``check_devices``).
    """

    grid: dict[str, list[GridValue]]
    seeds: list[int]
    base: dict[str, Any] = field(default_factory=dict)
    ensemble: int = 16
    name: str = "sweep"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"sweep name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.base, dict):
            raise ValueError(f"base must be a dict of settings, got {type(self.base).__name__}")
        try:
            json.dumps(self.base, allow_nan=False)
        except (TypeError, ValueError) as error:
            # base is stored in spec.json, so it must survive a JSON round trip.
            raise ValueError(
                f"base must be JSON-serialisable with finite floats: {error}"
            ) from None
        object.__setattr__(self, "grid", _checked_grid(self.grid))
        object.__setattr__(self, "seeds", _checked_seeds(self.seeds))
        if not _is_int(self.ensemble) or self.ensemble < 1:
            raise ValueError(f"ensemble must be an int >= 1, got {self.ensemble!r}")

    def points(self) -> list[dict[str, GridValue]]:
        """Every combination of the grid values, in grid key order with the last key varying
        fastest; one point with no parameters when the grid is empty."""
        names = list(self.grid)
        return [dict(zip(names, values)) for values in itertools.product(*self.grid.values())]

    def members(self) -> list[Member]:
        """Every (point, seed) pair, point-major and seed-minor, in the order of ``seeds``."""
        pairs = itertools.product(enumerate(self.points()), self.seeds)
        return [
            Member(index=i, point=p, seed=seed, params=dict(params))
            for i, ((p, params), seed) in enumerate(pairs)
        ]

    def chunks(self) -> list[list[Member]]:
        """Consecutive members, ``ensemble`` per chunk (the last may be shorter). Chunks depend only
        on the spec, so a resumed sweep evaluates exactly the chunks a fresh one would."""
        members = self.members()
        return [members[i : i + self.ensemble] for i in range(0, len(members), self.ensemble)]

    def check_devices(self, num_devices: int, available: int) -> None:
        """Raises, before any work, unless every chunk's members split evenly over
        ``num_devices`` devices (a sharded ensemble), naming the values and the valid choices;
        ``available`` is how many devices there are to choose from."""
        if self.ensemble % num_devices:
            multiples = ", ".join(str(num_devices * k) for k in range(1, 4))
            raise ValueError(
                f"ensemble {self.ensemble} does not split over the {num_devices} devices in use: "
                f"choose an ensemble that is a multiple of {num_devices} ({multiples}, ...), or "
                f"devices that divide {self.ensemble} "
                f"({_divisors(self.ensemble, available)} of the {available} available)"
            )
        # Chunks hold `ensemble` members but the last one holds the rest: with `ensemble` a
        # multiple of num_devices, it splits exactly when the member count does.
        members = len(self.points()) * len(self.seeds)
        if members % num_devices:
            common = math.gcd(members, self.ensemble)
            raise ValueError(
                f"the sweep's {members} members ({len(self.points())} points x "
                f"{len(self.seeds)} seeds) leave a last chunk of {members % self.ensemble} "
                f"that does not split over the {num_devices} devices in use: choose seeds or grid "
                f"values that make the member count a multiple of {num_devices}, or devices that "
                f"divide both {members} and ensemble {self.ensemble} "
                f"({_divisors(common, available)} of the {available} available)"
            )

    def to_json(self) -> dict[str, Any]:
        """The canonical form stored as ``spec.json``: ``base`` with its keys sorted (its order
        carries no meaning), ``grid`` in its own order (which sets the order of the points)."""
        return {
            "name": self.name,
            "base": json.loads(json.dumps(self.base, sort_keys=True)),
            "grid": {name: list(values) for name, values in self.grid.items()},
            "seeds": list(self.seeds),
            "ensemble": self.ensemble,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, name: str = "sweep") -> SweepSpec:
        """A spec from a parsed file's top level; ``name`` is used when ``data`` has none."""
        if not isinstance(data, dict):
            raise ValueError(f"a sweep spec must be a mapping, got {type(data).__name__}")
        unknown = [key for key in data if key not in _VALID_KEYS]
        if unknown:
            raise ValueError(
                f"unknown sweep spec key(s) {', '.join(map(repr, unknown))}; "
                f"valid keys are {', '.join(_VALID_KEYS)}"
            )
        missing = [key for key in _REQUIRED_KEYS if key not in data]
        if missing:
            raise ValueError(f"sweep spec lacks required key(s) {', '.join(map(repr, missing))}")
        return cls(**{"name": name, **data})


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """Reads a sweep spec from a ``.json`` or ``.toml`` file; its name defaults to the file stem.

    JSON ``null`` is None. TOML has no null, so in a TOML file a grid value given as the string
    ``"none"`` is read as None (only grid values, and only in TOML).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise ValueError(f"sweep spec {path} must be a .json or .toml file, got {path.suffix!r}")
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"sweep spec {path} {what}: give a .json or .toml file")
    if suffix == ".json":
        data = read_json(path, ValueError, "correct it at that line")
    else:
        data = _read_toml(path)
        if isinstance(data.get("grid"), dict):
            data["grid"] = {
                name: [None if v == "none" else v for v in values]
                if isinstance(values, list)
                else values
                for name, values in data["grid"].items()
            }
    try:
        return SweepSpec.from_dict(data, name=path.stem)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def spec_differences(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs between two canonical specs (``SweepSpec.to_json()``), one phrase per
    difference; empty when they describe the same sweep. The name is a label that changes no
    result, so it is not compared."""
    differences = []
    for key in ("base", "seeds", "ensemble"):
        if canonical(saved.get(key)) != canonical(new.get(key)):
            differences.append(key)
    saved_grid, new_grid = saved.get("grid") or {}, new.get("grid") or {}
    removed = [name for name in saved_grid if name not in new_grid]
    added = [name for name in new_grid if name not in saved_grid]
    if removed:
        differences.append(f"grid axes removed: {', '.join(map(repr, removed))}")
    if added:
        differences.append(f"grid axes added: {', '.join(map(repr, added))}")
    changed = [
        name
        for name in new_grid
        if name in saved_grid and canonical(saved_grid[name]) != canonical(new_grid[name])
    ]
    if changed:
        differences.append(f"values of grid axes {', '.join(map(repr, changed))}")
    common = [name for name in new_grid if name in saved_grid]
    if not removed and not added and common != [name for name in saved_grid if name in new_grid]:
        differences.append("order of the grid axes")
    unknown = sorted(set(saved) - set(_VALID_KEYS))
    if unknown:
        differences.append(f"unknown saved keys {', '.join(map(repr, unknown))}")
    return differences


def canonical(value: Any) -> str:
    # Compare as JSON text: in Python True == 1 == 1.0, but they are different grid values.
    return json.dumps(value, sort_keys=True)


def _divisors(n: int, at_most: int) -> str:
    return ", ".join(str(d) for d in range(1, min(n, at_most) + 1) if n % d == 0)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _checked_grid(grid: Any) -> dict[str, list[GridValue]]:
    if not isinstance(grid, dict):
        raise ValueError(f"grid must map parameter names to lists, got {type(grid).__name__}")
    checked = {}
    for name, values in grid.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"grid parameter names must be non-empty strings, got {name!r}")
        if name in _RESERVED_NAMES:
            raise ValueError(
                f"grid parameter {name!r} clashes with a column the sweep writes itself; "
                f"reserved names are {', '.join(_RESERVED_NAMES)}"
            )
        if not isinstance(values, (list, tuple)):
            raise ValueError(
                f"grid axis {name!r} must be a list of values, got {type(values).__name__} "
                f"{values!r}"
            )
        if not values:
            raise ValueError(f"grid axis {name!r} is empty; give it at least one value")
        seen = {}
        for value in values:
            if value is not None and not isinstance(value, (bool, int, float, str)):
                raise ValueError(
                    f"grid axis {name!r} has value {value!r} of type {type(value).__name__}; "
                    "values must be numbers, strings, bools or None"
                )
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(
                    f"grid axis {name!r} has non-finite value {value!r}; JSON cannot store it, "
                    "use a string such as 'inf' instead"
                )
            # 1 and 1.0 are the same point, but True is not 1: key by (is bool, value).
            key = (isinstance(value, bool), value)
            if key in seen:
                raise ValueError(
                    f"grid axis {name!r} has duplicate value {value!r} "
                    f"(also given as {seen[key]!r})"
                )
            seen[key] = value
        checked[name] = list(values)
    return checked


def _checked_seeds(seeds: Any) -> list[int]:
    if _is_int(seeds):
        if seeds < 1:
            raise ValueError(f"seeds given as a count must be >= 1, got {seeds}")
        return list(range(seeds))
    if not isinstance(seeds, (list, tuple)):
        raise ValueError(f"seeds must be an int count or a list of ints, got {seeds!r}")
    if not seeds:
        raise ValueError("seeds is empty; give a count >= 1 or a non-empty list of ints")
    for seed in seeds:
        if not _is_int(seed) or seed < 0:
            raise ValueError(f"seeds must be non-negative ints, got {seed!r}")
    duplicates = sorted({seed for seed in seeds if seeds.count(seed) > 1})
    if duplicates:
        raise ValueError(f"seeds has duplicate value(s) {', '.join(map(str, duplicates))}")
    return list(seeds)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise ValueError(
                f"reading {path} needs tomllib (Python >= 3.11) or the tomli package; "
                "install tomli or give the spec as .json"
            ) from None
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid TOML ({e}): correct it at that line") from None

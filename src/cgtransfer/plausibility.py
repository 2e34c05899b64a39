"""Unit slips: a value outside a quantity's plausible bounds that becomes plausible in a unit people often type by
mistake (25 for 298.15 K: degrees Celsius; 100000 for 1 bar: pascal; 760 for 0.76 g/cm³: kg/m³; 1.2 for 12 Å:
nanometres; 10 for 1 nm: ångström). The bounds themselves live in the schemas (workflow/schemas); this module
reads a key's unit from its name (``temperature_K``, ``pressure_bar``, ``density_g_cm3``, ``rmax_A``,
``nonbonded_cutoff_nm``) and names the slip that explains an out-of-bounds value, with the value converted.

A base module: used by ``cgtransfer.config`` while Snakemake parses the workflow, before any job.
"""

from __future__ import annotations

import math

# a unit → [(a unit typed by mistake for it, its symbol, that unit → this one)]
SLIPS = {
    "K": [("degrees Celsius", "°C", lambda v: v + 273.15)],
    "bar": [("pascal", "Pa", lambda v: v / 1e5)],
    "g/cm³": [("kg/m³", "kg/m³", lambda v: v / 1000.0)],
    "Å": [("nm", "nm", lambda v: v * 10.0)],
    "nm": [("Å", "Å", lambda v: v / 10.0)],
}
# the unit a key's name declares by its ending (a key named otherwise declares it in its schema: ``x-unit``)
SUFFIXES = {"_K": "K", "_bar": "bar", "_g_cm3": "g/cm³", "_A": "Å", "_nm": "nm"}
# the slip is named only when the converted value is also typical of the quantity (a liquid's density is at least
# 0.05 g/cm³: 7.9 read as kg/m³ would be a gas, not the liquid the study simulates)
TYPICAL = {"g/cm³": {"minimum": 0.05}}


def unit_of(key: str, declared: str | None = None) -> str | None:
    """The unit of a key: ``declared`` (a schema's ``x-unit``), else the one its name ends in (``rmax_A`` → Å)."""
    if declared:
        return declared
    for suffix, unit in SUFFIXES.items():
        if str(key).endswith(suffix):
            return unit
    return None


def within(value: float, bounds: dict) -> bool:
    """``value`` inside JSON-schema bounds (``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``)."""
    checks = (("minimum", lambda b: value >= b), ("maximum", lambda b: value <= b),
              ("exclusiveMinimum", lambda b: value > b), ("exclusiveMaximum", lambda b: value < b))
    return all(test(bounds[name]) for name, test in checks if name in bounds)


def unit_slip(key: str, value, bounds: dict, unit: str | None = None) -> str | None:
    """For ``value`` of ``key`` (in ``unit``, else the unit its name declares) outside ``bounds``: the unit
    mistake that explains it, as "100000 bar: is this pascal? (100000 Pa = 1 bar)", when the value read in that
    unit lies inside the bounds (and is typical of the quantity); else None."""
    unit = unit_of(key, unit)
    if unit not in SLIPS or isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or within(value, bounds):
        return None
    for name, symbol, convert in SLIPS[unit]:
        meant = convert(value)
        if within(meant, bounds) and within(meant, TYPICAL.get(unit, {})):
            return f"{value:g} {unit}: is this {name}? ({value:g} {symbol} = {meant:.6g} {unit})"
    return None

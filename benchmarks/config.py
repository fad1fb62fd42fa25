"""Where the benchmark runs and with what: one place for ports, URLs and sizes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PROJECT = ROOT.parent
WORK = PROJECT / "var" / "bench"  # logs, Lua data, profiles (var/ is not committed)
RESULTS = ROOT / "RESULTS.md"

HOST = "127.0.0.1"  # the load only ever goes to loopback
GATEWAY_PORT = int(os.environ.get("BENCH_GATEWAY_PORT", "18000"))
POSTGRAPHILE_PORT = int(os.environ.get("BENCH_POSTGRAPHILE_PORT", "18001"))

PG_SERVER = os.environ.get("BENCH_PG", "127.0.0.1:5432")
PG_DATABASE = os.environ.get("BENCH_DATABASE", "santana_bench")
PG_OWNER = "root"  # trust auth; owns the tables, loads the data
APP_ROLE = "santana_app"  # what the gateway (and PostGraphile) connect as: RLS in force

PASSWORD = "bench-password-0123"  # every generated account's password


def pg_url(user: str = PG_OWNER, database: str = PG_DATABASE, driver: str = "postgresql") -> str:
    return f"{driver}://{user}@{PG_SERVER}/{database}"


@dataclass(frozen=True)
class Scale:
    """Sizes of the data set; `FULL` is what the issue asks for."""

    clinics: int = 20
    counselors_per_clinic: int = 10
    patients_per_clinic: int = 500
    days: int = 70  # calendar days covered by sessions, weekdays only are booked
    days_ahead: int = 28  # of which this many lie after the anchor date (upcoming)
    slots_per_day: int = 10  # hourly slots of 50 minutes, 08:00-18:00 UTC
    patient_user_share: float = 0.1  # patients who have their own login
    seed: int = 7

    @property
    def counselors(self) -> int:
        return self.clinics * self.counselors_per_clinic

    @property
    def patients(self) -> int:
        return self.clinics * self.patients_per_clinic


FULL = Scale()  # 20 clinics, 200 counselors, 10,000 patients, 100,000 sessions


@dataclass(frozen=True)
class Load:
    """How hard and how long wrk pushes: bounded in time, loopback only."""

    duration_s: int = int(os.environ.get("BENCH_DURATION", "25"))
    warmup_s: int = 3
    threads: int = 1  # wrk shares the 2 cores with what it measures: keep it lean
    connections: int = 50  # dashboard, day view and the PostGraphile comparison
    mixed_connections: int = 500  # the scale-up point
    timeout_s: int = 10

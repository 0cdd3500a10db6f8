"""Paths of the local runner's caches, build files and dataset, relative to the repository root."""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[4]
CACHE_DIR = Path(os.environ.get("SPM_CACHE_DIR", REPOSITORY_ROOT / ".cache"))
KAFKA_POM = REPOSITORY_ROOT / "deploy" / "kafka" / "pom.xml"
OKR_DATASET_DIR = REPOSITORY_ROOT / "data" / "okrs" / "sourcegraph-fy21-q1"

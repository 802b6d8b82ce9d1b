"""Training pool children are recycled where TensorFlow grows: every way of starting a
training worker passes the same ``--max-memory-per-child`` / ``--max-tasks-per-child``."""

import re
import subprocess
from pathlib import Path

import yaml

from scripts.stack import (
    TRAINING_MAX_MEMORY_PER_CHILD_KIB,
    TRAINING_MAX_TASKS_PER_CHILD,
    training_recycling_flags,
)

ROOT = Path(__file__).resolve().parents[3]


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_stack_flags_default_and_follow_the_environment():
    default = training_recycling_flags({})
    assert flag(default, "--max-memory-per-child") == str(TRAINING_MAX_MEMORY_PER_CHILD_KIB)
    assert flag(default, "--max-tasks-per-child") == str(TRAINING_MAX_TASKS_PER_CHILD)
    custom = training_recycling_flags(
        {
            "TRAINYARD_TRAINING_MAX_MEMORY_PER_CHILD_KIB": "768000",
            "TRAINYARD_TRAINING_MAX_TASKS_PER_CHILD": "7",
        }
    )
    assert custom == ["--max-memory-per-child", "768000", "--max-tasks-per-child", "7"]


def test_makefile_worker_uses_the_same_defaults():
    out = subprocess.run(
        ["make", "-n", "-s", "worker"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    line = " ".join(out.replace("\\\n", " ").split())
    celery = line[line.index("celery -A workers.celery_app worker") :].split()
    assert flag(celery, "--max-memory-per-child") == str(TRAINING_MAX_MEMORY_PER_CHILD_KIB)
    assert flag(celery, "--max-tasks-per-child") == str(TRAINING_MAX_TASKS_PER_CHILD)


def test_compose_training_worker_uses_the_same_defaults():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    training = [s["command"] for s in services.values() if "training-cpu" in str(s.get("command"))]
    assert len(training) == 1
    # Compose interpolates ${VAR:-default}; the defaults must match the stack's.
    defaults = dict(re.findall(r"\$\{(\w+):-(\d+)\}", training[0]))
    assert defaults == {
        "TRAINYARD_TRAINING_MAX_MEMORY_PER_CHILD_KIB": str(TRAINING_MAX_MEMORY_PER_CHILD_KIB),
        "TRAINYARD_TRAINING_MAX_TASKS_PER_CHILD": str(TRAINING_MAX_TASKS_PER_CHILD),
    }
    assert "--max-memory-per-child ${TRAINYARD_TRAINING_MAX_MEMORY_PER_CHILD_KIB" in training[0]

"""repro: the study harness (matrix -> cells -> executors -> results -> report)."""
from pathlib import Path

# the repository checkout: cells run from here and containers mount it read-only
PROJECT_ROOT = Path(__file__).resolve().parents[1]

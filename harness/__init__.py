"""repro: the study harness (matrix -> cells -> executors -> results -> report)."""

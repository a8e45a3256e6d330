"""The trainer's exit codes: one torch-free table that model/ and harness/ both import.

Kept free of torch (and of anything newer than Python 3.6) so the harness can read it
without importing the model, and the old images can run it.
"""

__all__ = ["EXIT_DONE", "EXIT_USAGE", "EXIT_DIVERGED", "EXIT_TERMINATED"]

EXIT_DONE = 0          # trained (or already trained) and evaluated; result.json says done
EXIT_USAGE = 2         # the config or the command line is wrong; nothing was trained
EXIT_DIVERGED = 3      # a loss or gradient went non-finite; result.json names iteration and network
EXIT_TERMINATED = 143  # SIGTERM: a checkpoint was saved, the next run resumes it (128 + 15)

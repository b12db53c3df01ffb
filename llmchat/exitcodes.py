"""The exit codes every face uses."""

OK, ERROR, USAGE, INTERRUPTED, TERMINATED = 0, 1, 2, 130, 143

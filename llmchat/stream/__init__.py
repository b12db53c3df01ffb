"""The shared streaming client: bytes from the network in, typed stream events out.

Nothing in this package imports Textual or Rich; every face (raw, rendered, TUI) consumes the
same async iterator of `StreamEvent`s.
"""

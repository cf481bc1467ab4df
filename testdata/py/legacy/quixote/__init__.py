"""Stand-in for the quixote package (only the session module is provided)."""

"""Small helpers every layer may use: atomic file writes, hashing, environment facts."""

"""The local leaderboard and experiment reports."""

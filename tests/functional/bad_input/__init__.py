"""Bad-input corpus (issue 6): every surface refuses bad config drives clearly and cleanly."""

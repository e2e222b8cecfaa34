"""Training, evaluation and publishing for rbedit (run from the repository root)."""

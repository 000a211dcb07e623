"""vidagent's benchmarks: one module per benchmark (loading, samples, official scoring)."""

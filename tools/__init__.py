"""Developer tools: generators of committed files (each with a test that fails when its output is stale)."""

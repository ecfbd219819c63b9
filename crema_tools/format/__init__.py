"""The on-disk format: WebDataset shards, the sample metadata they carry, and report.json."""

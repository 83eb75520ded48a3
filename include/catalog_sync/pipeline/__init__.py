"""The stages of one vendor run, as pure functions that the DAG's tasks wrap."""

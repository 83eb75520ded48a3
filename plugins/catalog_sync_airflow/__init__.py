"""Airflow-side wiring of Catalog Sync: task wrappers and the per-vendor DAG factory."""

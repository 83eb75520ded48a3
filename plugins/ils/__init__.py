"""Airflow side of the ILS connection: ILSHook (plain module, imported as `ils.hooks`)."""

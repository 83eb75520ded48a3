# Image for the distributed mode (docker-compose.yaml): Airflow 3.3.2 with Catalog Sync's pinned
# dependencies. dags/, plugins/ and include/ are mounted, so code changes need no rebuild.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root requirements.txt /opt/catalog-sync/requirements.txt
RUN pip install --no-cache-dir -r /opt/catalog-sync/requirements.txt
ENV PYTHONPATH=/opt/airflow/include:/opt/airflow/plugins:/opt/airflow/dags

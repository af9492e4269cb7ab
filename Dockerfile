# The API image used by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY custody ./custody
COPY storage ./storage
COPY api ./api
COPY cli ./cli
RUN pip install --no-cache-dir --no-deps . && useradd --system custody \
    && mkdir -p /var/lib/custody && chown custody /var/lib/custody
USER custody
EXPOSE 8000
CMD ["custody", "serve", "--host", "0.0.0.0", "--port", "8000"]

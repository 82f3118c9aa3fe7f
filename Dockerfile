# The one image of every Truffle process: `api` (the default), `worker`, `migrate` and the rest of
# the `truffle-ashby` command. docker-compose.yml builds it; see docs/operations.md.

# Build stage: install the package and its production dependencies, at the exact versions of
# constraints.txt, into a virtualenv that the final stage copies whole.
FROM python:3.11.16-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Everything `pip install .` reads: the project metadata and every module pyproject.toml names
# ([tool.setuptools] py-modules and packages.find), nothing else.
COPY constraints.txt pyproject.toml README.md worker.py ./
COPY api/ api/
COPY activities/ activities/
COPY workflows/ workflows/
COPY truffle/ truffle/
COPY migrations/ migrations/
# tools/ without the development tools, which .dockerignore leaves out (docs/operations.md).
COPY tools/ tools/
RUN pip install --no-cache-dir -c constraints.txt .

# Final stage: the virtualenv on a clean slim Python, run by an unprivileged user.
FROM python:3.11.16-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH

RUN groupadd --system --gid 10001 truffle \
    && useradd --system --uid 10001 --gid truffle --home-dir /home/truffle --create-home \
        --shell /usr/sbin/nologin truffle

COPY --from=build /opt/venv /opt/venv

WORKDIR /home/truffle
USER 10001:10001

# 8000: the API. 9464: the worker's /metrics, /healthz and /readyz (METRICS_PORT).
EXPOSE 8000 9464

ENTRYPOINT ["truffle-ashby"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]

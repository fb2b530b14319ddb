# One image for every part of WIMS; the command picks the part:
#   wims serve api|ingest|maasp|integrity|tasks     a service (CMD default: the api)
#   wims migrate                                    Alembic upgrade to head, then exit
#   wims topics                                     create the topic catalogue, then exit
# Configuration is the WIMS_* environment (shared/infrastructure/settings.py); health is checked by
# docker-compose.yml on each service's /readyz.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# The runtime dependencies first, from pyproject.toml alone, so a code change does not
# reinstall them. [project.optional-dependencies] (the dev extras) are left out.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the project itself: a regular install (not editable) of the shared, services and
# tools packages, their Alembic migrations and the `wims` console script.
COPY shared ./shared
COPY services ./services
COPY tools ./tools
RUN pip install --no-deps . \
 && wims --help > /dev/null


FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --create-home --home-dir /home/wims --uid 10001 --user-group \
      --shell /usr/sbin/nologin wims
COPY --from=build /opt/venv /opt/venv

USER wims
# The faust workers keep their files under WIMS_RUN_DIR (docker-compose.yml: /home/wims/run).
WORKDIR /home/wims
EXPOSE 8000 8001 8002 8003 8004

ENTRYPOINT ["wims"]
CMD ["serve", "api"]

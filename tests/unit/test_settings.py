import pytest

from shared.infrastructure.settings import Settings


def test_defaults_are_the_documented_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WIMS_API_PORT", "WIMS_INGEST_PORT", "WIMS_KAFKA_BOOTSTRAP", "WIMS_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    s = Settings()
    assert [s.port_of(n) for n in ("api", "ingest", "maasp", "integrity", "tasks")] == [
        8000,
        8001,
        8002,
        8003,
        8004,
    ]
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.sqlalchemy_url == "postgresql+psycopg://wims@127.0.0.1:5433/wims"


def test_environment_overrides_with_wims_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIMS_API_PORT", "9100")
    monkeypatch.setenv("WIMS_DATABASE_URL", "postgresql://u:p@db:5432/x")
    s = Settings()
    assert s.api_port == 9100
    # psycopg 3 is the one driver, whatever form the URL is given in
    assert s.sqlalchemy_url == "postgresql+psycopg://u:p@db:5432/x"
    assert s.libpq_url == "postgresql://u:p@db:5432/x"


def test_production_refuses_to_run_without_a_jwt_secret(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setenv("WIMS_ENVIRONMENT", "production")
    monkeypatch.setenv("WIMS_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("WIMS_JWT_SECRET", raising=False)
    with pytest.raises(ValueError, match="WIMS_JWT_SECRET"):
        Settings()
    assert list(tmp_path.iterdir()) == [], "production never invents a secret"
    monkeypatch.setenv("WIMS_JWT_SECRET", "a-real-secret-" + "x" * 20)
    assert Settings().jwt_secret == "a-real-secret-" + "x" * 20

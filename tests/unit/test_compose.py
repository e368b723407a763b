"""The production compose file checked against the code it deploys (no Docker needed: the file is only parsed).

``docker-compose.yml`` can drift from ``gateway/settings.py`` and ``gateway/cli/`` without anything failing until
a deployment silently ignores a misspelt variable. These tests read the compose file, the ``Dockerfile`` and the
examples under ``deploy/`` and check that every ``GATEWAY_*`` name is a settings field, that the settings parsed
from the compose environment point at the brokers and database the file declares, that the commands are real
``gateway`` commands, that the Kafka cluster is a consistent three-node KRaft quorum, and that its brokers
authenticate every client (SASL over TLS) and authorise it with the ACLs the code generates.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from gateway.audit.checkpoint import SigningKey as AuditSigningKey
from gateway.auth import generate_signing_key
from gateway.bootstrap import build, load_clients
from gateway.bus import KafkaBus
from gateway.bus.acls import kafka_acls_arguments, kafka_grants
from gateway.cli import app
from gateway.policy import load_registry
from gateway.settings import GatewaySettings, TopicSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / "deploy" / "gateway.env.example"
CLIENTS_EXAMPLE = ROOT / "deploy" / "clients.example.yaml"
KAFKA_ACLS = ROOT / "deploy" / "kafka" / "acls.txt"
KAFKA_SETUP = ROOT / "deploy" / "kafka" / "setup.sh"

GATEWAY_SERVICES = ("migrate", "gateway-api", "gateway-worker")
KAFKA_BROKERS = 3
SECRETS_DIR = "/run/secrets/"
# What the tests substitute for the values an operator puts in deploy/secrets/gateway.env.
OPERATOR_VALUES = {"POSTGRES_PASSWORD": "pg-password-for-tests", "GATEWAY_PSEUDONYM_KEY": "k" * 48,
                   "KAFKA_ADMIN_PASSWORD": "kafka-admin-password-for-tests",
                   "KAFKA_KEYSTORE_PASSWORD": "keystore-password-for-tests",
                   "GATEWAY_KAFKA_SASL_PASSWORD": "gateway-kafka-password-for-tests",
                   "GRAFANA_ADMIN_PASSWORD": "grafana-password-for-tests"}

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


# ------------------------------------------------------------------------------------------------ reading files


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a Compose env file (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: not a KEY=value line: {line!r}"
        values[key.strip()] = value.strip()
    return values


def operator_variables() -> dict[str, str]:
    """The example env file, filled in as an operator would (Compose substitutes these, with --env-file)."""
    values = read_env_file(ENV_EXAMPLE)
    return {key: value or OPERATOR_VALUES[key] for key, value in values.items()}


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose variable substitution: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        value, op = variables.get(name), match["op"] or ""
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and unset:
            raise AssertionError(f"${{{name}}} is required: {match['arg']}")
        if op.endswith("-") and unset:
            return str(match["arg"])
        return value or ""

    return _VARIABLE.sub(substitute, text)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def image_env() -> dict[str, str]:
    """``ENV`` of the image the services run (the Dockerfile's final stage)."""
    env: dict[str, str] = {}
    for keyword, rest in final_stage():
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def environment_of(service: Mapping[str, Any]) -> dict[str, Any]:
    """A service's ``environment``, in mapping or list form, as a dict."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        return {key: value for key, _, value in (str(item).partition("=") for item in raw)}
    return dict(raw)


def env_files_of(service: Mapping[str, Any]) -> list[str]:
    raw = service.get("env_file") or []
    entries = [raw] if isinstance(raw, str | dict) else raw
    return [entry["path"] if isinstance(entry, dict) else entry for entry in entries]


def container_env(service: Mapping[str, Any]) -> dict[str, str]:
    """What the container sees: image ENV, overridden by env_file, overridden by ``environment``."""
    variables = operator_variables()
    env = image_env()
    for path in env_files_of(service):
        assert Path(path) == Path("deploy/secrets/gateway.env"), f"unexpected env_file {path}"
        env.update(variables)  # deploy/secrets/gateway.env is a filled-in copy of the example
    env.update({key: interpolate(str(value), variables) for key, value in environment_of(service).items()})
    return env


def kafka_services(services: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The brokers: services of the Kafka image with a node id (``kafka-setup`` uses the image for its tools)."""
    return {
        name: s
        for name, s in services.items()
        if str(s.get("image", "")).startswith("apache/kafka:") and "KAFKA_NODE_ID" in environment_of(s)
    }


def client_listener(env: Mapping[str, str]) -> str:
    """The listener partners and the gateway use: the one taking SCRAM logins."""
    (name,) = [
        listener
        for listener in listeners(env["KAFKA_LISTENERS"])
        if env.get(f"KAFKA_LISTENER_NAME_{listener}_SASL_ENABLED_MECHANISMS") == "SCRAM-SHA-512"
    ]
    return name


def kafka_env(service: Mapping[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in environment_of(service).items()}


def listeners(spec: str) -> dict[str, tuple[str, int]]:
    """``NAME://host:port,...`` as {NAME: (host, port)} (an empty host means every interface)."""
    parsed = {}
    for item in spec.split(","):
        name, _, address = item.strip().partition("://")
        host, _, port = address.rpartition(":")
        parsed[name] = (host, int(port))
    return parsed


def valid_env_names() -> set[str]:
    """Every environment variable GatewaySettings reads: GATEWAY_<FIELD>, or GATEWAY_<FIELD>__<SUBFIELD> for models."""
    config = GatewaySettings.model_config
    prefix, delimiter = str(config["env_prefix"]), str(config["env_nested_delimiter"])
    names = set()
    for name, field in GatewaySettings.model_fields.items():
        assert field.alias is None and field.validation_alias is None, f"{name}: aliases are not handled here"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            # Only the nested form: the model's own env prefix (GATEWAY_TOPIC_*) would apply only when it is
            # built on its own, and a JSON blob in GATEWAY_TOPICS is harder to review than one variable per field.
            names |= {f"{prefix}{name}{delimiter}{sub}".upper() for sub in annotation.model_fields}
        else:
            names.add(f"{prefix}{name}".upper())
    return names


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No GATEWAY_* variable of the machine running the tests leaks into the settings under test."""
    for key in list(os.environ):
        if key.upper().startswith("GATEWAY_"):
            monkeypatch.delenv(key)
    yield monkeypatch


def compose_settings(service: Mapping[str, Any], monkeypatch: pytest.MonkeyPatch) -> GatewaySettings:
    """GatewaySettings as the service's container would build them (only its GATEWAY_* variables are set here)."""
    for key, value in container_env(service).items():
        if key.startswith("GATEWAY_"):
            monkeypatch.setenv(key, value)
    return GatewaySettings(_env_file=None)


# ------------------------------------------------------------------------------------------------ Kafka


def test_three_kafka_brokers_form_one_static_kraft_quorum(services: dict[str, dict[str, Any]]) -> None:
    brokers = kafka_services(services)
    assert len(brokers) == KAFKA_BROKERS
    envs = {name: kafka_env(s) for name, s in brokers.items()}
    assert {s["image"] for s in brokers.values()} == {"apache/kafka:4.1.1"}

    node_ids = {name: int(env["KAFKA_NODE_ID"]) for name, env in envs.items()}
    assert len(set(node_ids.values())) == KAFKA_BROKERS, f"node ids must differ: {node_ids}"

    cluster_ids = {env["CLUSTER_ID"] for env in envs.values()}
    assert len(cluster_ids) == 1, f"one cluster, one CLUSTER_ID: {cluster_ids}"
    (cluster_id,) = cluster_ids
    assert len(cluster_id) == 22 and len(base64.urlsafe_b64decode(cluster_id + "==")) == 16

    voter_specs = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs.values()}
    assert len(voter_specs) == 1, "every broker must name the same voters"
    voters = {}
    for voter in voter_specs.pop().split(","):
        node_id, _, address = voter.partition("@")
        host, _, port = address.rpartition(":")
        voters[int(node_id)] = (host, int(port))
    for name, env in envs.items():
        assert {r.strip() for r in env["KAFKA_PROCESS_ROLES"].split(",")} == {"broker", "controller"}
        assert "KAFKA_CONTROLLER_QUORUM_BOOTSTRAP_SERVERS" not in env, "static and dynamic quorum cannot be mixed"
        controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
        # Each voter is the broker with that node id, reached by its service name on its controller port.
        assert voters[node_ids[name]] == (name, listeners(env["KAFKA_LISTENERS"])[controller][1])
    assert set(voters) == set(node_ids.values())


def test_kafka_replicates_internal_topics_three_times_and_needs_two_in_sync(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in kafka_services(services).items():
        env = kafka_env(service)
        for setting in (
            "OFFSETS_TOPIC_REPLICATION_FACTOR",
            "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
            "DEFAULT_REPLICATION_FACTOR",
        ):
            assert env[f"KAFKA_{setting}"] == "3", f"{name}: {setting}"
        # MIN_INSYNC_REPLICAS is broker-wide and is what __consumer_offsets gets.
        for setting in (
            "TRANSACTION_STATE_LOG_MIN_ISR",
            "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
            "MIN_INSYNC_REPLICAS",
        ):
            assert env[f"KAFKA_{setting}"] == "2", f"{name}: {setting}"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_listeners_are_internal_and_consistent(
    compose: dict[str, Any],
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in kafka_services(services).items():
        env = kafka_env(service)
        bound = listeners(env["KAFKA_LISTENERS"])
        advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
        protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
        internal = env["KAFKA_INTER_BROKER_LISTENER_NAME"]
        assert set(bound) <= set(protocols), f"{name}: a listener without a security protocol"
        assert controller in bound and controller not in advertised
        assert advertised[internal] == (name, bound[internal][1]), f"{name}: advertise the service name"
        assert "ports" not in service, f"{name}: brokers are reachable only on the compose network"
        assert "healthcheck" in service
        volume, _, mount = service["volumes"][0].partition(":")
        assert mount == env["KAFKA_LOG_DIRS"] and volume in compose["volumes"], f"{name}: log dir not persisted"


def test_kafka_brokers_authenticate_every_client_and_refuse_what_no_acl_allows(
    services: dict[str, dict[str, Any]],
) -> None:
    """The topic names the sender, so the brokers must know who writes: SASL over TLS everywhere, ACLs enforced."""
    for name, service in kafka_services(services).items():
        env = kafka_env(service)
        protocols = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert set(protocols.values()) == {"SASL_SSL"}, f"{name}: a listener without SASL over TLS"
        assert env["KAFKA_AUTHORIZER_CLASS_NAME"] == "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        assert env["KAFKA_SUPER_USERS"] == "User:admin", f"{name}: only the brokers' own principal is a super user"
        assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
        client = client_listener(env)
        assert client != env["KAFKA_INTER_BROKER_LISTENER_NAME"], "partners never share the brokers' listener"
        for listener in listeners(env["KAFKA_LISTENERS"]):
            for mechanism in env[f"KAFKA_LISTENER_NAME_{listener}_SASL_ENABLED_MECHANISMS"].split(","):
                key = f"KAFKA_LISTENER_NAME_{listener}_{mechanism.replace('-', '___')}_SASL_JAAS_CONFIG"
                assert env[key].rstrip().endswith(";"), f"{name}: {key}"
                if mechanism == "PLAIN":  # static users: the super user alone
                    assert re.findall(r"user_(\w+)=", env[key]) == ["admin"], f"{name}: {key}"
                    assert "${KAFKA_ADMIN_PASSWORD:?" in env[key], "the password comes from the operator's env file"
        assert env["KAFKA_SSL_KEYSTORE_LOCATION"].startswith(SECRETS_DIR)
        assert env["KAFKA_SSL_TRUSTSTORE_LOCATION"].startswith(SECRETS_DIR)
        assert env["KAFKA_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM"] == "https"
        for secret in ("kafka_keystore", "kafka_ca", "kafka_admin_client"):
            assert secret in service["secrets"], f"{name} does not mount {secret}"
        assert "--command-config /run/secrets/kafka_admin_client" in " ".join(service["healthcheck"]["test"])


def test_kafka_acls_file_is_what_the_code_grants() -> None:
    """deploy/kafka/acls.txt (applied by kafka-setup) is generated from gateway.bus.acls and the registry."""
    registry = load_registry()
    restricted = {flow.recipient for flow in registry.flows if flow.restricted_topic}
    expected = kafka_acls_arguments(kafka_grants(registry.exchanging(), restricted, TopicSettings(prefix="")))
    lines = [line for line in KAFKA_ACLS.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    assert lines == expected, "regenerate deploy/kafka/acls.txt from gateway.bus.acls.kafka_grants()"
    # ALER writes its own in. topic and nothing else; the gateway writes no in. topic at all.
    writes = {line.split()[1]: line for line in lines if "--operation Write" in line}
    assert re.findall(r"--topic (\S+)", writes["User:aler"]) == ["in.aler"]
    assert not [t for t in re.findall(r"--topic (\S+)", writes["User:gateway"]) if t.startswith("in.")]


def test_kafka_setup_creates_users_and_acls_before_the_gateway_starts(services: dict[str, dict[str, Any]]) -> None:
    setup = services["kafka-setup"]
    assert setup["restart"] == "no" and setup["image"] == "apache/kafka:4.1.1"
    source, _, mount = setup["volumes"][0].partition(":")
    mount = mount.removesuffix(":ro")
    assert Path(source) == Path("deploy/kafka") and setup["command"][-1] == f"{mount}/setup.sh"
    script = KAFKA_SETUP.read_text(encoding="utf-8")
    assert f"{mount}/acls.txt" in script and "/run/secrets/kafka_users" in script
    assert "kafka_users" in setup["secrets"]
    for broker in kafka_services(services):
        assert setup["depends_on"][broker] == {"condition": "service_healthy"}
    for name in ("gateway-api", "gateway-worker"):
        assert services[name]["depends_on"]["kafka-setup"] == {"condition": "service_completed_successfully"}


# ------------------------------------------------------------------------------------------------ PostgreSQL


def test_postgres_has_a_healthcheck_and_a_named_volume(
    compose: dict[str, Any],
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]
    assert re.fullmatch(r"postgres:1[56](\.\d+)?(-\w+)?", postgres["image"])
    test = postgres["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(test)
    env = environment_of(postgres)
    assert f"--username={env['POSTGRES_USER']}" in test and f"--dbname={env['POSTGRES_DB']}" in test
    volume, _, mount = postgres["volumes"][0].partition(":")
    assert mount == "/var/lib/postgresql/data" and volume in compose["volumes"]


# ------------------------------------------------------------------------------------------------ gateway services


def test_gateway_services_run_the_dockerfile_image_with_one_shared_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    built = {name for name, s in services.items() if "build" in s}
    assert built == set(GATEWAY_SERVICES)
    shared = []
    for name in GATEWAY_SERVICES:
        service = services[name]
        assert service["build"]["dockerfile"] == "Dockerfile" and service["build"]["context"] == "."
        env = environment_of(service)
        assert all(isinstance(value, str) for value in env.values()), f"{name}: quote every value"
        shared.append({k: v for k, v in env.items() if k != "GATEWAY_INSTANCE_ID"})
    assert shared[0] == shared[1] == shared[2]
    instance_ids = {environment_of(services[name])["GATEWAY_INSTANCE_ID"] for name in GATEWAY_SERVICES}
    assert len(instance_ids) == len(GATEWAY_SERVICES), "audit records should tell the roles apart"


def test_valid_names_come_from_the_settings_model() -> None:
    names = valid_env_names()
    assert {"GATEWAY_BUS", "GATEWAY_DATABASE_URL", "GATEWAY_TOPICS__REPLICATION_FACTOR"} <= names
    # A typo, the standalone TopicSettings prefix and the unprefixed name are all rejected.
    assert not {"GATEWAY_TOPICS__PARTITON", "GATEWAY_TOPIC_PARTITIONS", "GATEWAY_TOPICS", "BUS"} & names


@pytest.mark.parametrize("source", [*GATEWAY_SERVICES, "deploy/gateway.env.example", "Dockerfile"])
def test_every_gateway_variable_is_a_settings_field(source: str, services: dict[str, dict[str, Any]]) -> None:
    if source == "Dockerfile":
        names = set(image_env())
    elif source.startswith("deploy/"):
        names = set(read_env_file(ROOT / source))
    else:
        names = set(environment_of(services[source]))
    gateway_names = {name for name in names if name.upper().startswith("GATEWAY_")}
    assert gateway_names, f"{source} sets no GATEWAY_* variable"
    unknown = sorted(gateway_names - valid_env_names())
    assert not unknown, f"{source}: not fields of GatewaySettings (pydantic-settings would ignore them): {unknown}"


@pytest.mark.parametrize("name", GATEWAY_SERVICES)
def test_settings_parsed_from_the_compose_environment(
    name: str,
    compose: dict[str, Any],
    services: dict[str, dict[str, Any]],
    clean_environment: pytest.MonkeyPatch,
) -> None:
    service = services[name]
    settings = compose_settings(service, clean_environment)

    assert settings.environment == "production"
    assert settings.bus == "kafka"
    advertised = set()
    for broker_name, broker in kafka_services(services).items():
        env = kafka_env(broker)
        host, port = listeners(env["KAFKA_ADVERTISED_LISTENERS"])[client_listener(env)]
        assert host == broker_name
        advertised.add(f"{host}:{port}")
        protocol = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        assert settings.kafka_security_protocol == protocol[client_listener(env)] == "SASL_SSL"
    bootstrap = [server.strip() for server in settings.kafka_bootstrap_servers.split(",")]
    assert len(bootstrap) == len(set(bootstrap)) and set(bootstrap) == advertised
    # The gateway logs in as its own principal, with the password of the operator's env file.
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-512" and settings.kafka_sasl_username == "gateway"
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == OPERATOR_VALUES["GATEWAY_KAFKA_SASL_PASSWORD"]

    min_isr = {int(kafka_env(b)["KAFKA_MIN_INSYNC_REPLICAS"]) for b in kafka_services(services).values()}
    assert settings.topics.replication_factor == KAFKA_BROKERS
    assert settings.topics.replication_factor > max(min_isr), "one broker down must not stop writes"
    assert settings.topics.partitions == 6

    postgres = environment_of(services["postgres"])
    url = make_url(settings.resolved_database_url())
    assert url.drivername == "postgresql+asyncpg"
    assert url.host == "postgres" and url.port == 5432
    assert url.database == postgres["POSTGRES_DB"] and url.username == postgres["POSTGRES_USER"]
    assert url.password == interpolate(postgres["POSTGRES_PASSWORD"], operator_variables())

    assert settings.pseudonym_key is not None
    assert settings.pseudonym_key.get_secret_value() == OPERATOR_VALUES["GATEWAY_PSEUDONYM_KEY"]
    key_files = (settings.token_signing_key_file, settings.audit_signing_key_file, settings.clients_file,
                 settings.kafka_ssl_cafile)
    for path in key_files:
        assert path is not None and str(path).startswith(SECRETS_DIR), path
        secret = str(path).removeprefix(SECRETS_DIR)
        assert secret in service["secrets"], f"{name} does not mount the secret {secret}"
        assert Path(compose["secrets"][secret]["file"]).parent == Path("deploy/secrets")

    # build() creates data_dir even on PostgreSQL and Kafka: it must be writable in a read-only container.
    assert service.get("read_only") is True
    assert str(settings.data_dir) in service["tmpfs"]


async def test_production_build_succeeds_with_the_compose_settings(
    services: dict[str, dict[str, Any]],
    clean_environment: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """build() is where production refuses missing secrets: with the compose settings nothing is missing."""
    settings = compose_settings(services["gateway-worker"], clean_environment)
    key_file = tmp_path / "token_signing_key"
    key_file.write_text(json.dumps(generate_signing_key().as_dict(private=True)), encoding="utf-8")
    audit_key_file = tmp_path / "audit_signing_key"
    audit_key_file.write_text(AuditSigningKey.generate("quartieri-gateway/audit").to_text() + "\n", encoding="utf-8")
    settings = settings.model_copy(
        update={"token_signing_key_file": key_file, "clients_file": CLIENTS_EXAMPLE, "data_dir": tmp_path / "data",
                "audit_signing_key_file": audit_key_file}
    )
    gateway = build(settings)
    try:
        assert isinstance(gateway.bus, KafkaBus)
        assert gateway.store.dialect == "postgresql"
        assert {c.organisation for c in gateway.clients} == {*gateway.registry.exchanging(), "gateway-privacy"}
    finally:
        await gateway.store.close()


def test_example_clients_file_names_known_partners_and_roles() -> None:
    registry = load_registry()
    clients = load_clients(CLIENTS_EXAMPLE)
    assert clients and len({c.client_id for c in clients}) == len(clients)
    known_scopes = {"messages:submit", "status:read", "inbox:read", "consent:write", "consent:read"}
    for client in clients:
        if client.organisation == "gateway-privacy":  # privacy officers: their own role and scope only
            officer_scopes = frozenset({"audit:verify", "privacy:report", "privacy:erase"})
            assert (client.role, client.scopes) == ("privacy-officer", officer_scopes), client
            continue
        partner = registry.partners[client.organisation]
        if "messages:submit" in client.scopes:  # a sender's role must be entitled to claim some purpose
            assert any(client.role in roles for roles in partner.entitlements.values()), client
        assert client.scopes <= known_scopes, client


@pytest.mark.parametrize("name", GATEWAY_SERVICES)
def test_commands_are_gateway_cli_commands(
    name: str,
    services: dict[str, dict[str, Any]],
    clean_environment: pytest.MonkeyPatch,
) -> None:
    command = services[name]["command"]
    assert isinstance(command, list), "exec form: no shell between the container and the gateway"
    # --help runs no command body, but an unknown command or option still fails.
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output


def test_cli_rejects_a_misspelt_command_or_option() -> None:
    """The check above would catch a typo in the compose file."""
    assert CliRunner().invoke(app, ["wroker", "--help"]).exit_code != 0
    assert CliRunner().invoke(app, ["serve", "--no-wrokers", "--help"]).exit_code != 0


def test_services_start_in_dependency_order(services: dict[str, dict[str, Any]]) -> None:
    brokers = set(kafka_services(services))
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    for name in ("gateway-api", "gateway-worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"] == {"condition": "service_completed_successfully"}
        for dependency in {"postgres", *brokers}:
            assert depends_on[dependency] == {"condition": "service_healthy"}, f"{name} -> {dependency}"
    for name, service in services.items():
        for dependency, spec in (service.get("depends_on") or {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{name} waits on {dependency}, which has no healthcheck"


def test_api_serves_without_workers_on_the_published_port(
    services: dict[str, dict[str, Any]],
    clean_environment: pytest.MonkeyPatch,
) -> None:
    api = services["gateway-api"]
    assert api["command"] == ["serve", "--no-workers"]
    settings = compose_settings(api, clean_environment)
    assert settings.http_host == "0.0.0.0"  # noqa: S104 - inside the container, behind the compose port mapping
    assert [int(str(p).rsplit(":", 1)[1]) for p in api["ports"]] == [settings.http_port] == [8080]
    assert f"127.0.0.1:{settings.http_port}/health/ready" in " ".join(api["healthcheck"]["test"])


def test_workers_scale_out(services: dict[str, dict[str, Any]]) -> None:
    worker = services["gateway-worker"]
    assert worker["command"] == ["worker"]
    assert worker["deploy"]["replicas"] >= 2
    assert "container_name" not in worker and "ports" not in worker, "both would stop a second replica"
    # `gateway worker` stops cleanly on SIGTERM (tests/integration/test_cli.py); leave it time to.
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert worker["stop_grace_period"]


def test_secrets_stay_out_of_the_compose_file_and_the_image(
    compose: dict[str, Any],
    services: dict[str, dict[str, Any]],
) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = read_env_file(ENV_EXAMPLE)
    for match in _VARIABLE.finditer(text):
        name = match["braced"] or match["named"]
        if name:
            assert name in example, f"${{{name}}} is not in deploy/gateway.env.example"
            assert match["op"] == ":?", f"${{{name}}} must fail when unset, not default"
    for name in GATEWAY_SERVICES:
        assert "GATEWAY_PSEUDONYM_KEY" not in environment_of(services[name])
        assert "GATEWAY_KAFKA_SASL_PASSWORD" not in environment_of(services[name])
        assert env_files_of(services[name]) == ["deploy/secrets/gateway.env"]
    for secret in compose["secrets"].values():
        assert secret["file"].startswith("./deploy/secrets/")
    ignored = (ROOT / "deploy" / "secrets" / ".gitignore").read_text(encoding="utf-8").split()
    assert ignored[ignored.index("*") :] == ["*", "!.gitignore"]
    dockerignore = [
        line
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    ]
    assert dockerignore[0] == "*", ".dockerignore must be an allow-list"
    assert not any(line.startswith("!deploy") for line in dockerignore)


# ------------------------------------------------------------------------------------------------ Dockerfile


def test_dockerfile_builds_a_non_root_gateway_image() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert all(rest.split()[0] == "python:3.11-slim" for rest in froms)
    assert any(keyword == "RUN" and re.search(r"\bpip install \.(\s|$)", rest) for keyword, rest in instructions)
    final = final_stage()
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    (entrypoint,) = [json.loads(rest) for keyword, rest in final if keyword == "ENTRYPOINT"]
    assert entrypoint == ["gateway"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["gateway"] == "gateway.cli:app"

    # Everything the package build reads is copied into the build context.
    copied = set()
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            copied |= {Path(src).as_posix() for src in rest.split()[:-1]}
    packages = {pattern.rstrip("*") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert {"pyproject.toml", pyproject["project"]["readme"], *packages} <= copied


def test_prometheus_scrapes_the_gateway_metrics_port_and_grafana_loads_the_dashboard(
    services: dict[str, dict[str, Any]],
    clean_environment: pytest.MonkeyPatch,
) -> None:
    """Monitoring (docs/operations.md): every file the two services mount exists, Prometheus scrapes both gateway
    services on the port their settings serve metrics on, and only Grafana publishes a port, on loopback."""
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = str(volume).split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    scraped = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
    for name in ("gateway-api", "gateway-worker"):
        settings = compose_settings(services[name], clean_environment)
        assert settings.metrics_port is not None and settings.metrics_host == "0.0.0.0"  # noqa: S104
        assert scraped[name] == {"names": [name], "type": "A", "port": settings.metrics_port}
        assert "ports" not in services[name] or all(str(settings.metrics_port) not in str(p)
                                                    for p in services[name]["ports"])
    assert "ports" not in services["prometheus"]
    assert [str(p) for p in services["grafana"]["ports"]] == ["127.0.0.1:3000:3000"]

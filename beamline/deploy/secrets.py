"""Secrets for compiled pipelines: references at compile time, values only at run time.

A compiled pipeline is a file that gets uploaded, versioned and shown in UIs, so it must never hold
a password or token. Instead:

- `beamline compile --secret NAME=SOURCE` declares that the environment variable NAME is a secret
  and where the container gets it at run time. SOURCE is one of
    - `k8s:SECRET/KEY`: key KEY of the Kubernetes Secret SECRET, set as NAME by Kubeflow Pipelines
      (a kfp-kubernetes `secretAsEnv` entry in the compiled platform spec; Kubeflow only);
    - `gcp:projects/P/secrets/S/versions/V`: a Google Secret Manager version, fetched by the
      container entrypoint with the job's service account (Vertex AI or Kubeflow on GKE);
    - `env`: already in the container's environment (set by the cluster, e.g. an admission
      policy); the entrypoint only checks that it is there.
- Beam args may refer to a secret as `${secret:NAME}`; the entrypoint substitutes the value just
  before the TFX step starts. Component code reads `os.environ["NAME"]`.
- After compiling, the JSON is scanned for the current values of the declared secrets and of any
  environment variable whose name looks secret (PASSWORD, TOKEN, ...); a hit fails the compile and
  names the variable, never the value, and no file is written.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from beamline.errors import BeamlineError, ConfigError
from beamline.redaction import SOURCES_ENV, install_log_redaction, looks_secret, secret_values

PLACEHOLDER = re.compile(r"\$\{secret:([A-Za-z_][A-Za-z0-9_]*)\}")
ENTRYPOINT_MODULE = "beamline.deploy.entrypoint"

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_GCP_SECRET = re.compile(r"^projects/[^/]+/secrets/[^/]+/versions/[^/]+$")


class SecretMissing(BeamlineError):
    """A declared secret is not available in the container at run time."""


@dataclass(frozen=True)
class SecretRef:
    """The environment variable `name` holds a secret that comes from `kind`/`location`."""

    name: str
    kind: str  # "k8s" | "gcp" | "env"
    location: str = ""  # "SECRET/KEY" for k8s, the version resource name for gcp

    @property
    def source(self) -> str:
        return f"{self.kind}:{self.location}" if self.location else self.kind

    @property
    def k8s_secret_and_key(self) -> tuple[str, str]:
        secret, _, key = self.location.partition("/")
        return secret, key


def parse_secret(spec: str) -> SecretRef:
    """Parses one `--secret NAME=SOURCE` value."""
    name, sep, source = spec.partition("=")
    hint = (
        "Use --secret NAME=k8s:SECRET/KEY, NAME=gcp:projects/P/secrets/S/versions/V or NAME=env, "
        "where NAME is the environment variable the container reads."
    )
    if not sep or not _NAME.match(name):
        raise ConfigError(f"Bad --secret {spec!r}: it must be NAME=SOURCE. {hint}")
    kind, _, location = source.partition(":")
    if kind == "env" and not location:
        return SecretRef(name, "env")
    if kind == "k8s":
        secret, _, key = location.partition("/")
        if _K8S_NAME.match(secret) and key and "/" not in key:
            return SecretRef(name, "k8s", location)
    if kind == "gcp" and _GCP_SECRET.match(location):
        return SecretRef(name, "gcp", location)
    raise ConfigError(f"Bad --secret {spec!r}: unknown or malformed source {source!r}. {hint}")


def placeholder(name: str) -> str:
    return "${secret:" + name + "}"


def check_references(args: Iterable[str], secrets: Sequence[SecretRef]) -> None:
    """Every `${secret:NAME}` in `args` must name a declared secret."""
    declared = {s.name for s in secrets}
    used = {m for arg in args for m in PLACEHOLDER.findall(arg)}
    unknown = sorted(used - declared)
    if unknown:
        raise ConfigError(
            f"{', '.join(placeholder(n) for n in unknown)} used in --beam-arg but not declared: "
            f"add --secret {unknown[0]}=SOURCE (k8s:SECRET/KEY, gcp:projects/.../versions/V or "
            "env) so the container can resolve it at run time."
        )
    names = [s.name for s in secrets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"--secret declared more than once for {', '.join(duplicates)}.")


def check_target(secrets: Sequence[SecretRef], target: str) -> None:
    """Kubernetes Secrets exist only on Kubeflow; Vertex AI needs Secret Manager."""
    k8s = [s for s in secrets if s.kind == "k8s"]
    if k8s and target != "kubeflow":
        raise ConfigError(
            f"--secret {k8s[0].name}={k8s[0].source}: Vertex AI Pipelines cannot mount "
            "Kubernetes Secrets. Store it in Secret Manager and use "
            f"--secret {k8s[0].name}=gcp:projects/P/secrets/S/versions/latest instead."
        )


def apply_to_job(job: dict, secrets: Sequence[SecretRef], target: str) -> None:
    """Makes every container step of a compiled PipelineJob dict resolve `secrets` at run time.

    Each container runs `python -m beamline.deploy.entrypoint <original module> <args>` with
    `BEAMLINE_SECRET_SOURCES` (names and sources only) in its environment; for `k8s:` sources a
    kfp-kubernetes `secretAsEnv` platform spec is added under the top-level `platformSpec` key.
    """
    if not secrets:
        return
    check_target(secrets, target)
    k8s = [s for s in secrets if s.kind == "k8s"]
    sources = json.dumps({s.name: s.source for s in secrets}, sort_keys=True)
    executors = job["pipelineSpec"]["deploymentSpec"]["executors"]
    k8s_executors = {}
    for label, executor in sorted(executors.items()):
        container = executor.get("container")
        if container is None:  # importers and resolvers run no user code
            continue
        container["command"] = _wrap_command(container.get("command", []), label)
        hook = container.get("lifecycle", {}).get("preCacheCheck")
        if hook is not None:
            hook["command"] = _wrap_command(hook.get("command", []), label)
        env = [e for e in container.get("env", []) if e.get("name") != SOURCES_ENV]
        container["env"] = [*env, {"name": SOURCES_ENV, "value": sources}]
        if k8s:
            k8s_executors[label] = {"secretAsEnv": _secret_as_env(k8s)}
    if k8s_executors:
        platform = job.setdefault("platformSpec", {}).setdefault("platforms", {})
        platform["kubernetes"] = {"deploymentSpec": {"executors": k8s_executors}}


def _wrap_command(command: Sequence[str], label: str) -> list[str]:
    command = list(command)
    if command[:3] == ["python", "-m", ENTRYPOINT_MODULE]:
        return command
    if command[:2] != ["python", "-m"] or len(command) < 3:
        raise ConfigError(
            f"Cannot wrap the command {command!r} of executor {label} to resolve secrets: "
            "Beamline only wraps `python -m MODULE` commands."
        )
    return ["python", "-m", ENTRYPOINT_MODULE, *command[2:]]


def _secret_as_env(secrets: Sequence[SecretRef]) -> list[dict]:
    by_secret: dict[str, list[dict]] = {}
    for s in secrets:
        secret, key = s.k8s_secret_and_key
        by_secret.setdefault(secret, []).append({"secretKey": key, "envVar": s.name})
    return [{"secretName": name, "keyToEnv": keys} for name, keys in sorted(by_secret.items())]


def find_leaks(
    text: str, secrets: Sequence[SecretRef], environ: Mapping[str, str] | None = None
) -> list[str]:
    """Names of environment variables whose secret value appears in `text`."""
    environ = os.environ if environ is None else environ
    declared = {s.name for s in secrets}
    leaks = []
    for name, value in sorted(environ.items()):
        if looks_secret(name, value, declared) and (
            value in text or json.dumps(value)[1:-1] in text
        ):
            leaks.append(name)
    return leaks


# --- run time (inside the container) -------------------------------------------------------------


def resolve_environment(
    environ: MutableMapping[str, str],
    fetch_gcp: Callable[[str], str] | None = None,
) -> list[str]:
    """Puts every secret listed in `BEAMLINE_SECRET_SOURCES` into `environ`; returns the names.

    `k8s:` and `env` secrets must already be set (by Kubernetes or the cluster); `gcp:` ones are
    fetched from Secret Manager. Raises SecretMissing naming every secret that is unavailable.
    """
    sources: dict[str, str] = json.loads(environ.get(SOURCES_ENV, "{}") or "{}")
    fetch_gcp = fetch_gcp or fetch_gcp_secret
    missing = []
    for name, source in sorted(sources.items()):
        if source.startswith("gcp:") and name not in environ:
            environ[name] = fetch_gcp(source[len("gcp:") :])
        if not environ.get(name):
            missing.append(f"{name} (from {source})")
    if missing:
        raise SecretMissing(
            f"Secrets not available in this container: {', '.join(missing)}. For k8s: sources "
            "check that the Kubernetes Secret and key exist in the run's namespace; for env "
            "sources that the cluster sets the variable; for gcp: sources that the job's service "
            "account can access the Secret Manager version."
        )
    return sorted(sources)


def substitute(args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """`args` with every `${secret:NAME}` replaced by environ[NAME]."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in environ:
            raise SecretMissing(
                f"{placeholder(name)} is used in the step's arguments but ${name} is not set: "
                f"declare it with --secret {name}=SOURCE when compiling."
            )
        return environ[name]

    return [PLACEHOLDER.sub(value, arg) for arg in args]


def resolve_args(args: Sequence[str], environ: MutableMapping[str, str]) -> list[str]:
    """What a step runs with: the declared secrets put into `environ` (resolve_environment),
    their values masked in this process's logs from now on, then `args` substituted.

    The masking comes first: Beam logs the flags it does not know with their values, so a
    secret in such a flag would otherwise reach the step's log."""
    resolve_environment(environ)
    install_log_redaction(secret_values(environ))
    return substitute(args, environ)


def fetch_gcp_secret(resource: str) -> str:
    """The payload of a Secret Manager version, read with Application Default Credentials."""
    import base64

    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    url = f"https://secretmanager.googleapis.com/v1/{resource}:access"
    response = AuthorizedSession(credentials).get(url, timeout=60)
    if response.status_code != 200:
        raise SecretMissing(
            f"Secret Manager refused {resource}: HTTP {response.status_code}. Check that the "
            "version exists and the job's service account has roles/secretmanager.secretAccessor."
        )
    return base64.b64decode(response.json()["payload"]["data"]).decode("utf-8")

#!/usr/bin/env python3
"""The local cloud: emulator + this stack + demo practice + carrier simulator.

    python infra/local.py dev    # bring everything up, stay in the foreground (make dev)
    python infra/local.py test   # bring it up, run every test, tear it down (make test)
    python infra/local.py deploy # rebuild and redeploy into the running `dev` cloud (make deploy)
    python infra/local.py fuzz   # the contract fuzzer, full budget, against the running `dev` cloud (make fuzz)

Runs under .tools/venv/bin/python (boto3 comes with aws-sam-cli there).

What it does, in order:
  1. starts the AWS emulator (ministack) on LOCAL_AWS_PORT (4566) and the
     carrier simulator on CARRIER_SIM_PORT (4599);
  2. builds every binary of the workspace in ONE cargo invocation (`local`
     profile: unoptimised dependencies of the AWS SDK, no LTO, native target:
     the emulator runs provided.al2023 bootstraps as local processes, so a
     native build is exactly what runs); `test` builds the tests in the same
     invocation;
  3. stages each function's binary as `bootstrap` the way `sam build` would,
     and deploys template.yaml with `sam deploy` (the same template as AWS;
     only parameters differ);
  4. creates (or updates) the demo practice with practice-admin and points the
     simulator's callbacks at the deployed webhook;
  5. writes .local/endpoints.json.

Everything started is stopped on Ctrl-C / SIGTERM, and on exit.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
TOOLS = ROOT / ".tools"
STAGE = ROOT / ".aws-sam" / "local"
STACK = os.environ.get("LOCAL_STACK_NAME", "patient-messaging")
REGION = "us-east-1"
AWS_PORT = int(os.environ.get("LOCAL_AWS_PORT", "4566"))
SIM_PORT = int(os.environ.get("CARRIER_SIM_PORT", "4599"))
AWS_URL = f"http://127.0.0.1:{AWS_PORT}"
SIM_URL = f"http://127.0.0.1:{SIM_PORT}"

# Credentials of the local stack only (nothing real is behind them).
CARRIER = {"account": "9900000", "application": "local-application", "user": "sim-user", "password": "sim-password"}
WEBHOOK = {"user": "bandwidth-callbacks", "password": "local-webhook-secret"}

# See Cargo.toml: opt-level 0 without LTO, shared with the tests' build.
PROFILE = "local"
FUNCTION_BINARIES = ["messages-api", "practice-api", "carrier-webhook", "carrier-events", "dispatcher", "media-copier", "event-delivery", "console"]

# The demo practice's carrier: `bandwidth` (default) or `aws` (AWS End User
# Messaging SMS, simulated by the same carrier simulator; `CARRIER=aws make dev`).
DEMO_CARRIER = os.environ.get("CARRIER", "bandwidth").strip().lower() or "bandwidth"
# The local stack's AWS End User Messaging setup (names only: the simulator
# plays the service; the emulator enforces no IAM).
SMS = {"configuration_set": "local-configuration-set", "opt_out_list": "local-opt-out-list",
       "numbers_arn": "arn:aws:sms-voice:us-east-1:000000000000:phone-number/local"}
TOOL_BINARIES = ["carrier-sim", "practice-admin"]

COLORS = {"aws": "\033[36m", "sim": "\033[35m", "local": "\033[32m", "test": "\033[33m"}


def log(msg: str, who: str = "local") -> None:
    color = COLORS.get(who, "") if sys.stdout.isatty() else ""
    reset = "\033[0m" if color else ""
    print(f"{color}[{who}]{reset} {msg}", flush=True)


def aws_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        AWS_ENDPOINT_URL=AWS_URL,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        SAM_CLI_TELEMETRY="0",
    )
    return env


class Processes:
    """Children started by this run; stopped together, in reverse order."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str], logfile: Path) -> subprocess.Popen:
        logfile.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # its own process group: we stop it with all its children
        )
        self.children.append((name, proc))
        record_started(name, proc.pid)

        def pump() -> None:
            with logfile.open("a") as f:
                assert proc.stdout is not None
                for line in proc.stdout:
                    f.write(line)
                    f.flush()
                    if os.environ.get("LOCAL_QUIET") != "1":
                        log(line.rstrip(), name)

        threading.Thread(target=pump, daemon=True).start()
        return proc

    def stop(self) -> None:
        for name, proc in reversed(self.children):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, proc in reversed(self.children):
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            (LOCAL / "pids" / name).unlink(missing_ok=True)
        self.children.clear()

    def dead(self) -> tuple[str, int] | None:
        """The first child that has exited, with its exit code."""
        for name, proc in self.children:
            if proc.poll() is not None:
                return name, proc.returncode
        return None


def process_identity(pid: int) -> str | None:
    """What identifies a running process beyond its pid, which the system
    reuses: its start time (in clock ticks since boot) and command line.
    None when no such process runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # Field 22 (starttime) counted after the command name, which may hold spaces.
    fields = stat[stat.rindex(")") + 2:].split()
    return f"{fields[19]} {cmdline.hex()}"


def record_started(name: str, pid: int) -> None:
    """Writes .local/pids/<name>: the pid with its identity, so a later run
    stops that process only if it is still the one this run started."""
    identity = process_identity(pid)
    if identity is None:
        return
    (LOCAL / "pids").mkdir(parents=True, exist_ok=True)
    (LOCAL / "pids" / name).write_text(json.dumps({"pid": pid, "identity": identity}))


def stop_leftovers() -> None:
    """A previous run killed with SIGKILL may have left its children: stop
    them, but only a process whose pid, start time and command line all
    match what that run recorded (a reused pid belongs to someone else)."""
    pids = LOCAL / "pids"
    if not pids.is_dir():
        return
    for f in pids.iterdir():
        try:
            record = json.loads(f.read_text())
            pid, identity = int(record["pid"]), record["identity"]
        except (ValueError, KeyError, TypeError):
            log(f"ignoring {f} (not written by this version of local.py)")
            f.unlink(missing_ok=True)
            continue
        if process_identity(pid) == identity:
            try:
                os.killpg(pid, signal.SIGTERM)
                log(f"stopped a leftover {f.name} (pid {pid}) from an earlier run")
                deadline = time.monotonic() + 10
                while process_identity(pid) == identity and time.monotonic() < deadline:
                    time.sleep(0.1)
            except (ProcessLookupError, PermissionError):
                pass
        f.unlink(missing_ok=True)


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_until(what: str, check, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit(f"{what}: the process exited with code {proc.returncode}; see .local/logs/")
        try:
            if check():
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what}: not ready after {timeout:.0f} s")


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as r:
        return 200 <= r.status < 300


def run(cmd: list[str], env: dict[str, str] | None = None, capture: bool = False) -> str:
    log("$ " + " ".join(cmd))
    result = subprocess.run(cmd, cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE if capture else None)
    if result.returncode != 0:
        raise SystemExit(f"command failed ({result.returncode}): {' '.join(cmd)}")
    return result.stdout or ""


# What `make test` builds and tests: the whole workspace but the benchmarks
# (which have no tests and are run by hand with `make dev` up).
TEST_SELECTION = ["--workspace", "--exclude", "benchmarks"]


def build(binaries: list[str] | None = None, with_tests: bool = False) -> None:
    """One cargo invocation for every binary asked (default: the functions
    and the tools), so dependencies are built once.

    `with_tests` (make test) builds the binaries and every test target in
    that one invocation: cargo then resolves features once for both (the
    tests turn on messaging-core's `testing` feature, which only adds
    in-memory ports no function calls), so the tests reuse every crate the
    functions were built with instead of rebuilding the workspace's own
    crates with other features."""
    binaries = binaries or FUNCTION_BINARIES + TOOL_BINARIES
    started = time.monotonic()
    cmd = ["cargo", "build", "--profile", PROFILE, "--locked"]
    if with_tests:
        cmd += TEST_SELECTION + ["--bins", "--tests"]
    else:
        for b in binaries:
            cmd += ["-p", b]
    run(cmd)
    what = "binaries and tests" if with_tests else f"{len(binaries)} binaries"
    log(f"built {what} in {time.monotonic() - started:.0f} s")


def stage_template() -> Path:
    """Writes .aws-sam/local/template.yaml: template.yaml with each function's
    CodeUri pointing at a folder holding its binary as `bootstrap` (what
    `sam build` produces, without building each function separately)."""
    sys.path.insert(0, str(ROOT))
    from samcli.yamlhelper import yaml_dump, yaml_parse  # type: ignore

    template = yaml_parse((ROOT / "template.yaml").read_text())
    if STAGE.exists():
        shutil.rmtree(STAGE)
    STAGE.mkdir(parents=True)
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        code_dir = STAGE / logical_id
        code_dir.mkdir()
        shutil.copy2(ROOT / "target" / PROFILE / binary, code_dir / "bootstrap")
        resource["Properties"]["CodeUri"] = str(code_dir)
        del resource["Metadata"]
    out = STAGE / "template.yaml"
    out.write_text(yaml_dump(template))
    return out


def deploy(staged: Path) -> dict[str, str]:
    started = time.monotonic()
    sam = str(TOOLS / "venv" / "bin" / "sam")
    params = deploy_params()
    DEPLOYED.unlink(missing_ok=True)
    # SAM reads samconfig.toml from the template's directory, here
    # .aws-sam/local/ (none there): the repository's samconfig.toml, meant
    # for AWS deploys, is never applied to the local stack.
    run(
        [
            sam, "deploy",
            "--template-file", str(staged),
            "--stack-name", STACK,
            "--region", REGION,
            "--resolve-s3",
            "--capabilities", "CAPABILITY_IAM",
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides", *[f"{k}={v}" for k, v in params.items()],
        ],
        env=aws_env(),
    )
    import boto3  # type: ignore

    cfn = boto3.client("cloudformation", endpoint_url=AWS_URL, region_name=REGION,
                       aws_access_key_id="test", aws_secret_access_key="test")
    stack = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    LOCAL.mkdir(exist_ok=True)
    DEPLOYED.write_text(json.dumps(deployment_state(staged), indent=2))
    log(f"deployed stack {STACK} in {time.monotonic() - started:.0f} s")
    return outputs


DEPLOYED = LOCAL / "deployed.json"
# The Lambda name of this machine's architecture (the local build is native).
NATIVE_ARCHITECTURE = "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def secret_arn(name: str, value: str) -> str:
    """The emulator's Secrets Manager secret `{STACK}/{name}` holding `value`
    (created or updated): the stack reads its passwords the way it does on
    AWS, from secrets it is given the ARNs of."""
    import boto3  # type: ignore

    sm = boto3.client("secretsmanager", endpoint_url=AWS_URL, region_name=REGION,
                      aws_access_key_id="test", aws_secret_access_key="test")
    secret_id = f"{STACK}/{name}"
    try:
        return sm.put_secret_value(SecretId=secret_id, SecretString=value)["ARN"]
    except sm.exceptions.ResourceNotFoundException:
        return sm.create_secret(Name=secret_id, SecretString=value)["ARN"]


def deploy_params() -> dict[str, str]:
    return {
        "CarrierApiUrl": f"{SIM_URL}/api/v2",
        "CarrierAccountId": CARRIER["account"],
        "CarrierApplicationId": CARRIER["application"],
        "CarrierUsername": CARRIER["user"],
        "CarrierPasswordSecretArn": secret_arn("carrier-api-password", CARRIER["password"]),
        "WebhookUsername": WEBHOOK["user"],
        "WebhookPasswordSecretArn": secret_arn("webhook-password", WEBHOOK["password"]),
        "AwsEndpointUrl": AWS_URL,
        # The emulator runs the native binaries as local processes (it only
        # looks at the architecture when it runs functions in Docker), so
        # declare the machine's own; AWS defaults to arm64.
        "Architecture": NATIVE_ARCHITECTURE,
        # Every scheduled send through EventBridge Scheduler, even a near one,
        # so tests and the precision benchmark exercise that path.
        "QueueDelayMaxSeconds": os.environ.get("QUEUE_DELAY_MAX_SECONDS", "0"),
        # An unanswered send is settled within a minute here (AWS: 120 s).
        "SendConfirmWaitSeconds": os.environ.get("SEND_CONFIRM_WAIT_SECONDS", "45"),
        "LogLevel": os.environ.get("LOG_LEVEL", "info"),
        # One line per invocation with its AWS requests: the cost model's input.
        "MeterAwsRequests": "true",
        # Bulk waves paced to the number's throughput; the cost model's bulk
        # of 1,000 asks for a faster number than the 10DLC default of 1/s.
        "NumberMessagesPerSecond": os.environ.get("NUMBER_MESSAGES_PER_SECOND", "1"),
        # Tests (and a developer's receiver) get events at http://127.0.0.1:PORT.
        "AllowLocalEventEndpoints": "true",
        # Event retries in seconds instead of hours, so a failing receiver
        # sees every attempt within minutes (AWS keeps the 3-day default).
        "EventRetrySchedule": os.environ.get("EVENT_RETRY_SCHEDULE", "1,2,4,8,16,32,64,128,256"),
        # The console is served over plain HTTP here, where browsers keep a
        # Secure cookie only on 127.0.0.1 and localhost (AWS keeps "true").
        "SessionCookieSecure": "false",
        # AWS End User Messaging SMS, played by the carrier simulator (its
        # JSON API on SmsApiUrl; its events through the stack's SNS topic).
        "SmsConfigurationSetName": SMS["configuration_set"],
        "SmsOriginationIdentityArns": SMS["numbers_arn"],
        "SmsOptOutListName": SMS["opt_out_list"],
        "SmsApiUrl": SIM_URL,
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def deployment_state(staged: Path) -> dict:
    """What a deploy puts in place: the template with its parameters, and
    each function's bootstrap."""
    template = hashlib.sha256(staged.read_bytes() + json.dumps(deploy_params(), sort_keys=True).encode())
    code = {d.name: sha256_file(d / "bootstrap") for d in sorted(STAGE.iterdir()) if (d / "bootstrap").is_file()}
    return {"stack": STACK, "aws": AWS_URL, "template": template.hexdigest(), "code": code}


def deploy_code_only(staged: Path) -> bool:
    """When only function code changed since the last deploy into this
    running emulator (same template, same parameters), replaces the changed
    functions' code with UpdateFunctionCode, as `sam deploy` would do through
    CloudFormation, without its changeset round trips. False when a full
    deploy is needed."""
    try:
        last = json.loads(DEPLOYED.read_text())
    except (OSError, ValueError):
        return False
    now = deployment_state(staged)
    if {k: last.get(k) for k in ("stack", "aws", "template")} != {k: now[k] for k in ("stack", "aws", "template")}:
        return False
    if set(last.get("code", {})) != set(now["code"]):
        return False
    import boto3  # type: ignore

    clients = dict(endpoint_url=AWS_URL, region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    cfn = boto3.client("cloudformation", **clients)
    lam = boto3.client("lambda", **clients)
    try:
        resources = cfn.describe_stack_resources(StackName=STACK)["StackResources"]
    except Exception:  # the stack is gone (a restarted emulator): deploy it whole
        return False
    names = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources
             if r["ResourceType"] == "AWS::Lambda::Function"}
    changed = [lid for lid, digest in now["code"].items() if last["code"].get(lid) != digest]
    if any(lid not in names for lid in changed):
        return False
    for lid in changed:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o100755 << 16
            z.writestr(info, (STAGE / lid / "bootstrap").read_bytes())
        lam.update_function_code(FunctionName=names[lid], ZipFile=buffer.getvalue())
    for lid in changed:
        deadline = time.monotonic() + 60
        while lam.get_function_configuration(FunctionName=names[lid]).get("LastUpdateStatus") == "InProgress":
            if time.monotonic() > deadline:
                raise SystemExit(f"{lid}: code update not finished after 60 s")
            time.sleep(0.1)
    DEPLOYED.write_text(json.dumps(now, indent=2))
    log(f"updated the code of {len(changed)} function(s): {', '.join(changed) or 'none changed'}")
    return True


def demo_practice(outputs: dict[str, str]) -> dict[str, str]:
    admin = str(ROOT / "target" / PROFILE / "practice-admin")
    env = aws_env()
    env["TABLE_NAME"] = outputs["TableName"]
    settings = [
        "--name", os.environ.get("DEMO_NAME", "Bright Smiles Dental"),
        "--timezone", os.environ.get("DEMO_TIMEZONE", "America/New_York"),
        "--main", os.environ.get("DEMO_MAIN_NUMBER", "+14155550100"),
        "--alt", os.environ.get("DEMO_ALT_NUMBER", "+14155550101"),
        "--hourly-cap", os.environ.get("DEMO_HOURLY_CAP", "250"),
        "--cap-window-seconds", os.environ.get("DEMO_CAP_WINDOW_SECONDS", "3600"),
        "--quiet-hours", os.environ.get("DEMO_QUIET_HOURS", "08:00-21:00"),
        "--carrier", DEMO_CARRIER,
    ]
    exists = subprocess.run([admin, "show", "--practice-id", "demo"], cwd=ROOT, env=env,
                            capture_output=True, text=True).returncode == 0
    if exists:
        updated = json.loads(run([admin, "update", "--practice-id", "demo", *settings], env=env, capture=True))
        created = json.loads(run([admin, "rotate-key", "--practice-id", "demo"], env=env, capture=True))
        created["settings"] = updated["settings"]
    else:
        created = json.loads(run([admin, "create", "--practice-id", "demo", *settings], env=env, capture=True))
    if DEMO_CARRIER not in ("bandwidth", "aws"):
        raise SystemExit(f"CARRIER must be bandwidth or aws, not {DEMO_CARRIER!r}")
    log(f"demo practice 'demo' ready (carrier: {DEMO_CARRIER})")
    return created


DEMO_STAFF = {"user": "front.desk", "name": "Front Desk", "role": "admin"}


def demo_staff(outputs: dict[str, str]) -> dict[str, str]:
    """The demo practice's staff account for the console (an admin), with a
    new random password each run (the file .local/endpoints.json has it)."""
    import secrets

    admin = str(ROOT / "target" / PROFILE / "practice-admin")
    env = aws_env()
    env["TABLE_NAME"] = outputs["TableName"]
    env["STAFF_PASSWORD"] = password = secrets.token_urlsafe(12)
    user = os.environ.get("DEMO_STAFF_USER", DEMO_STAFF["user"])
    add = subprocess.run(
        [admin, "add-staff", "--practice-id", "demo", "--user", user,
         "--name", DEMO_STAFF["name"], "--role", DEMO_STAFF["role"]],
        cwd=ROOT, env=env, capture_output=True, text=True)
    if add.returncode != 0:
        if "already used" not in add.stderr:
            raise SystemExit(f"practice-admin add-staff failed: {add.stderr.strip()}")
        run([admin, "set-password", "--user", user], env=env, capture=True)
    log(f"demo staff account '{user}' ready")
    return {"user": user, "password": password}


def follow_function_logs(stopping: threading.Event) -> None:
    """Prints the functions' log lines (the emulator keeps them in its
    CloudWatch Logs, as AWS does), one readable line each."""
    import boto3  # type: ignore

    logs = boto3.client("logs", endpoint_url=AWS_URL, region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")
    since = int(time.time() * 1000)
    seen: set[str] = set()
    while not stopping.wait(1.0):
        try:
            groups = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{STACK}-")["logGroups"]
            newest = since
            for g in groups:
                name = g["logGroupName"].removeprefix(f"/aws/lambda/{STACK}-").rsplit("-", 1)[0]
                name = name.removesuffix("Function")
                events = logs.filter_log_events(logGroupName=g["logGroupName"], startTime=since)["events"]
                for e in events:
                    key = e.get("eventId") or f"{e['timestamp']}{e['message']}"
                    if key in seen:
                        continue
                    seen.add(key)
                    newest = max(newest, e["timestamp"])
                    line = readable(e["message"])
                    if line:
                        log(line, name)
            since = newest
        except Exception as exc:  # the emulator may be stopping; keep following
            if not stopping.is_set():
                log(f"log follower: {exc}")


def readable(message: str) -> str | None:
    message = message.strip()
    if message.startswith(("START ", "END ", "REPORT ")) or not message:
        return None
    try:
        record = json.loads(message)
    except ValueError:
        return message
    fields = record.get("fields", {})
    text = fields.pop("message", "")
    extras = " ".join(f"{k}={v}" for k, v in fields.items())
    return f"{record.get('level', '')} {text} {extras}".strip()


def up(procs: Processes, with_tests: bool = False) -> dict[str, str]:
    started = time.monotonic()
    stop_leftovers()
    (LOCAL / "endpoints.json").unlink(missing_ok=True)
    for port, what in ((AWS_PORT, "LOCAL_AWS_PORT"), (SIM_PORT, "CARRIER_SIM_PORT")):
        if not port_free(port):
            raise SystemExit(f"port {port} is in use; stop what uses it or set {what} to another port")
    # The emulator unpacks every deployed function into this directory and
    # never empties it (gigabytes after a few runs); a fresh emulator has no
    # functions, so what is there is left over.
    shutil.rmtree(Path(tempfile.gettempdir()) / f"ministack-provided-code-{AWS_PORT}", ignore_errors=True)
    logs = LOCAL / "logs"
    emulator_env = dict(os.environ, GATEWAY_PORT=str(AWS_PORT), MINISTACK_REGION=REGION, LOG_LEVEL="WARNING")
    emulator = procs.start("aws", [str(TOOLS / "emulator" / "bin" / "ministack")], emulator_env, logs / "emulator.log")

    build(with_tests=with_tests)  # overlaps with the emulator starting
    sim_env = dict(
        os.environ,
        SIM_PORT=str(SIM_PORT),
        SIM_ACCOUNT_ID=CARRIER["account"],
        SIM_API_USER=CARRIER["user"],
        SIM_API_PASSWORD=CARRIER["password"],
        SIM_APPLICATION_ID=CARRIER["application"],
        SIM_CALLBACK_USER=WEBHOOK["user"],
        SIM_CALLBACK_PASSWORD=WEBHOOK["password"],
    )
    sim = procs.start("sim", [str(ROOT / "target" / PROFILE / "carrier-sim")], sim_env, logs / "carrier-sim.log")
    wait_until("emulator", lambda: http_ok(f"{AWS_URL}/_ministack/health"), 60, emulator)
    wait_until("carrier simulator", lambda: http_ok(f"{SIM_URL}/_sim/health"), 30, sim)

    outputs = deploy(stage_template())
    api_url = f"{AWS_URL}/_aws/execute-api/{outputs['ApiId']}"
    practice = demo_practice(outputs)
    staff = demo_staff(outputs)
    config = json.dumps({"callback_url": f"{api_url}/v1/webhooks/bandwidth",
                         "callback_user": WEBHOOK["user"], "callback_password": WEBHOOK["password"],
                         # Where the simulated AWS End User Messaging publishes.
                         "aws_topic_arn": outputs["SmsEventTopicArn"], "aws_sns_url": AWS_URL}).encode()
    req = urllib.request.Request(f"{SIM_URL}/_sim/config", data=config, method="PUT",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
    if DEMO_CARRIER == "aws":
        # The demo numbers are origination numbers of the simulated AWS account.
        numbers = [practice["settings"]["channels"]["sms_main"], practice["settings"]["channels"]["sms_alt"]]
        req = urllib.request.Request(f"{SIM_URL}/_sim/aws/numbers", method="POST",
                                     data=json.dumps({"numbers": [n for n in numbers if n]}).encode(),
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).read()

    endpoints = {
        "api_url": api_url,
        "api_key": practice["api_key"],
        "practice_id": practice["practice_id"],
        "carrier_url": SIM_URL,
        "console": {"url": f"{api_url}/console", **staff},
        # Not in the public contract; used by the adapter tests.
        "aws_endpoint_url": AWS_URL,
        "stack_name": STACK,
        "table_name": outputs["TableName"],
        "send_queue_url": outputs["SendQueueUrl"],
        "dead_letter_queue_url": outputs["SendDeadLetterQueueUrl"],
        "media_bucket": outputs["MediaBucketName"],
        "media_queue_url": outputs["MediaQueueUrl"],
        "sms_event_queue_url": outputs["SmsEventQueueUrl"],
        # The demo practice's carrier (CARRIER=aws make dev: AWS End User Messaging SMS).
        "carrier": DEMO_CARRIER,
        "webhook": WEBHOOK,
        # The bulk pacing the stack was deployed with (the cost model's bulk).
        "number_messages_per_second": int(deploy_params()["NumberMessagesPerSecond"]),
    }
    LOCAL.mkdir(exist_ok=True)
    tmp = LOCAL / "endpoints.json.tmp"
    tmp.write_text(json.dumps(endpoints, indent=2) + "\n")
    tmp.replace(LOCAL / "endpoints.json")
    log(f"local cloud ready in {time.monotonic() - started:.0f} s; endpoints in .local/endpoints.json")
    return endpoints


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["dev", "test", "deploy", "fuzz"])
    args = parser.parse_args()

    procs = Processes()
    stopping = threading.Event()
    received: list[int] = []

    def on_signal(signum, _frame):
        received.append(signum)
        stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        if args.command == "deploy":
            started = time.monotonic()
            wait_until("emulator (start `make dev` first)", lambda: http_ok(f"{AWS_URL}/_ministack/health"), 5)
            # The same set as `make dev` builds: another set unifies the
            # dependencies' features differently and rebuilds them all.
            build()
            staged = stage_template()
            if not deploy_code_only(staged):
                deploy(staged)
            log(f"redeployed in {time.monotonic() - started:.1f} s")
            return 0
        if args.command == "fuzz":
            wait_until("the local cloud (start `make dev` first)", lambda: (LOCAL / "endpoints.json").exists(), 5)
            return run_fuzzer(procs, os.environ.get("FUZZ_MAX_EXAMPLES", str(FUZZ_FULL_EXAMPLES)))
        if args.command == "test":
            os.environ.setdefault("LOCAL_QUIET", "1")
            up(procs, with_tests=True)
            return run_tests(procs)
        endpoints = up(procs)
        threading.Thread(target=follow_function_logs, args=(stopping,), daemon=True).start()
        print(
            f"\nReady. The office console: {endpoints['console']['url']}\n"
            f"  sign in as {endpoints['console']['user']} with the password {endpoints['console']['password']}\n"
            "\nSend a first message (see README):\n"
            f"  curl -s -X POST {endpoints['api_url']}/v1/messages \\\n"
            f"    -H 'Authorization: Bearer {endpoints['api_key']}' -H 'Content-Type: application/json' \\\n"
            "    -d '{\"to\": \"+14155550142\", \"text\": \"Hello from the local cloud\"}'\n"
            "Press Ctrl-C to stop everything.\n",
            flush=True,
        )
        while not stopping.is_set():
            if (dead := procs.dead()) is not None:
                log(f"{dead[0]} exited with code {dead[1]}; stopping")
                return 1
            time.sleep(1)
        return 128 + (received[0] if received else signal.SIGINT)
    except KeyboardInterrupt:
        # Interrupted (Ctrl-C, or CI stopping us): never report success.
        log("interrupted; stopping")
        return 128 + (received[0] if received else signal.SIGINT)
    finally:
        if args.command not in ("deploy", "fuzz"):
            procs.stop()
            (LOCAL / "endpoints.json").unlink(missing_ok=True)
            log("stopped everything this run started")


def run_tests(procs: Processes) -> int:
    """Every test of the workspace against the running local cloud. Fails
    if the tests fail or if the emulator or the simulator dies meanwhile
    (tests that passed against a half-dead cloud prove nothing)."""
    env = dict(os.environ, ENDPOINTS_FILE=str(LOCAL / "endpoints.json"))
    log("running every test: unit, adapter (emulator) and end-to-end (deployed stack)", "test")
    tests = subprocess.Popen(
        ["cargo", "test", "--profile", PROFILE, "--locked", *TEST_SELECTION, "--no-fail-fast", "--",
         # The end-to-end tests mostly wait on the cloud (polling with
         # deadlines), each with its own practice or numbers: 8 at a time
         # take 70 s instead of 176 s on 2 cores.
         "--include-ignored", f"--test-threads={os.environ.get('TEST_THREADS', '8')}"],
        cwd=ROOT, env=env,
    )
    code = watch(tests, procs, "while the tests ran")
    if code != 0:
        return code
    shifted = run_unit_tests_time_shifted()
    if shifted != 0:
        return shifted
    # The console in a browser before the fuzzer fills the demo practice
    # with generated data (the browser tests make a practice of their own).
    browser = run_browser_tests(procs)
    if browser != 0:
        return browser
    return run_fuzzer(procs, os.environ.get("FUZZ_MAX_EXAMPLES", str(FUZZ_TEST_EXAMPLES)))


# The unit tests that run again with the clock moved ahead, and how far.
TIME_SHIFTED_CRATES = ["messaging_core", "messaging_lambda", "messaging_adapters", "carrier_sim", "cloud_tests"]
TIME_SHIFT = os.environ.get("TIME_SHIFT", "+400d")


def unit_test_binaries(crates: list[str]) -> list[str]:
    """The unit-test executables of `crates`, as the test run built them
    (the same selection, so nothing is rebuilt)."""
    out = subprocess.run(
        ["cargo", "test", "--profile", PROFILE, "--locked", *TEST_SELECTION, "--no-run",
         "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    found = []
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        target = msg.get("target", {})
        if (msg.get("reason") == "compiler-artifact" and msg.get("executable")
                and msg.get("profile", {}).get("test") and "lib" in target.get("kind", [])
                and target.get("name") in crates):
            found.append(msg["executable"])
    missing = set(crates) - {Path(e).name.rsplit("-", 1)[0] for e in found}
    if missing:
        raise SystemExit(f"no unit-test executable for {sorted(missing)}")
    return found


def run_unit_tests_time_shifted() -> int:
    """The unit tests of the core, the adapters, the lambda crate, the
    carrier simulator and the test helpers again, with the system clock
    moved TIME_SHIFT (400 days) ahead by Debian's faketime: a test that
    only passes until some date fails the day it is written, not the day
    that date passes (docs/design.md, "Where time enters"). The monotonic
    clock is left alone, so timeouts still work."""
    faketime = shutil.which("faketime")
    if faketime is None:
        log("faketime is missing: `make tools` installs it (apt-get install faketime)", "test")
        return 1
    started = time.monotonic()
    env = dict(os.environ, FAKETIME_DONT_FAKE_MONOTONIC="1")
    for exe in unit_test_binaries(TIME_SHIFTED_CRATES):
        name = Path(exe).name.rsplit("-", 1)[0]
        log(f"unit tests of {name} with the clock at {TIME_SHIFT} (faketime)", "test")
        code = subprocess.run([faketime, "-f", TIME_SHIFT, exe, "-q"], cwd=ROOT, env=env).returncode
        if code != 0:
            log(f"{name} fails with the clock at {TIME_SHIFT}: a test depends on today's date", "test")
            return code
    log(f"time-shifted unit tests passed in {time.monotonic() - started:.0f} s", "test")
    return 0


def run_browser_tests(procs: Processes) -> int:
    """The office console in Debian's headless Chromium, driven by
    playwright-core (tests/browser/console.test.mjs), against the deployed
    stack; it also writes the screenshots in docs/console/."""
    env = dict(os.environ, ENDPOINTS_FILE=str(LOCAL / "endpoints.json"),
               CHROMIUM=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
    log("driving the office console in headless Chromium (tests/browser)", "test")
    started = time.monotonic()
    browser = subprocess.Popen(
        ["node", "--test", "--test-concurrency=1", "--test-reporter=spec", "console.test.mjs"],
        cwd=ROOT / "tests" / "browser", env=env,
    )
    code = watch(browser, procs, "during the browser tests")
    log(f"browser tests finished in {time.monotonic() - started:.0f} s", "test")
    return code


# The day docs/openapi.yaml's example instants were written for: its
# scheduled sends are on this day and the next.
CONTRACT_EXAMPLES_DAY = "2026-12-01"


def dated_contract() -> Path:
    """docs/openapi.yaml with every example instant (a date and time; plain
    dates such as birth dates are left alone) moved by the same number of
    days, so the examples' scheduled sends fall two days from today, as
    they did the day they were written. The fuzzer sends the examples as
    they are; fixed dates would be refused as past (422) from then on and
    no longer show that a valid example is accepted."""
    import datetime as dt
    import re

    shift = (dt.date.today() + dt.timedelta(days=2)) - dt.date.fromisoformat(CONTRACT_EXAMPLES_DAY)
    instant = re.compile(r"(\d{4}-\d{2}-\d{2})(?=T\d{2}:\d{2})")
    example = re.compile(r"^\s*(send_at:|example:|examples:|- )|^\s*\w+: \"\d{4}-")

    def moved(match: re.Match) -> str:
        return (dt.date.fromisoformat(match.group(1)) + shift).isoformat()

    lines = (ROOT / "docs" / "openapi.yaml").read_text().splitlines(keepends=True)
    out = [instant.sub(moved, line) if example.search(line) else line for line in lines]
    path = LOCAL / "openapi.fuzz.yaml"
    path.write_text("".join(out))
    return path


# Generated cases per operation: `make test` runs a budget that keeps the
# loop short (every operation, every phase, fewer random cases each);
# `make fuzz` runs schemathesis' default against a running `make dev`.
FUZZ_TEST_EXAMPLES = 15
FUZZ_FULL_EXAMPLES = 100


def run_fuzzer(procs: Processes, max_examples: str) -> int:
    """schemathesis, every check, against the deployed stack with the demo
    practice's key: every request the OpenAPI file allows must get an answer
    the file declares (tests/contract/schemathesis.toml says what is
    configured and why). A fixed seed keeps a failure reproducible."""
    endpoints = json.loads((LOCAL / "endpoints.json").read_text())
    contract = dated_contract()
    fuzz = ROOT / ".tools" / "fuzz" / "bin" / "schemathesis"
    log(f"fuzzing the API against docs/openapi.yaml (schemathesis, all checks, {max_examples} cases per operation)", "test")
    cmd = [
        str(fuzz), "--config-file", str(ROOT / "tests" / "contract" / "schemathesis.toml"),
        "run", str(contract),
        "--url", endpoints["api_url"],
        "-H", f"Authorization: Bearer {endpoints['api_key']}",
        "--checks", "all", "--exclude-checks", "unsupported_method",
        # The carrier's webhook takes Basic credentials and Bandwidth's
        # payloads; its own tests cover it (tests/local_cloud/carrier_webhook.rs).
        "--exclude-path", "/v1/webhooks/bandwidth",
        # One worker: hypothesis describes its filters by parsing their
        # source with `ast`, which CPython 3.11 does not do safely from
        # several threads at once (a "recursion depth mismatch" error).
        "--workers", "1", "--seed", os.environ.get("FUZZ_SEED", "1"),
        "--max-examples", max_examples,
        "--no-color",
    ]
    return watch(subprocess.Popen(cmd, cwd=LOCAL), procs, "while fuzzing")


def watch(child: subprocess.Popen, procs: Processes, what: str) -> int:
    """Waits for `child` and returns its exit code, or 1 (after stopping
    it) when the emulator or the simulator exits first: a run against a
    half-dead cloud proves nothing."""
    try:
        while child.poll() is None:
            if (dead := procs.dead()) is not None:
                log(f"{dead[0]} exited with code {dead[1]} {what}; failing the run", "test")
                return 1
            time.sleep(0.5)
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())

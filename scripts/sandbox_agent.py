"""The parts of AWS that moto does not play, for scripts/sandbox.sh.

moto keeps ECS services, target groups and listeners as records: it runs no tasks and
routes no traffic. `serve` fills in both:

- the ECS agent: for each slot's ECS service, runs `desiredCount` containers of the
  service's current task definition (its image, pulled from the registry with moto's ECR
  token, and its environment) on the sandbox's dockerd, host network only. Each task gets
  its own loopback address and a free port (HOST and PORT in its environment), as awsvpc
  gives each task its own IP. A task is registered in the slot's target group once it
  answers, and deregistered before it is stopped when the task definition or the count
  changes;
- the load balancer: the production and test listeners, each an HTTP proxy on
  127.0.0.1 that reads the listener's forward action from moto on every request, picks a
  target group by weight, and forwards to a registered task that runs that slot's
  current task definition (503 when there is none, as an ALB does).

The other subcommands are the sandbox's eyes and hands: `show`, `weights` and `watch`
read what production serves; `alarm-in-bake` fires a slot's 5xx alarm once a version
has all production traffic and cutover's history says it is baking; `alarm-live` fires
the 5xx alarm of the slot that has all production traffic now (an incident on the live
release); `clear-alarms` sets every alarm back to OK.

    python sandbox_agent.py CONFIG.json serve|show|weights|watch|alarm-in-bake|alarm-live|clear-alarms

CONFIG.json (written by sandbox.sh): endpoint, region, stack (moto_stack.py's output
file), docker_host, state_dir, production_port, test_port, history_parameter (cutover's
SSM history of the service).
"""

import argparse
import base64
import http.client
import http.server
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import boto3

SLOTS = ("blue", "green")


class Sandbox:
    """Names from the stack and clients pointed at moto."""

    def __init__(self, config_path):
        with open(config_path) as f:
            self.config = json.load(f)
        with open(self.config["stack"]) as f:
            outputs = json.load(f)
        self.service = outputs["cutover_service"]["value"]
        kw = dict(
            endpoint_url=self.config["endpoint"], region_name=self.config["region"],
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )
        self.ecs = boto3.client("ecs", **kw)
        self.elb = boto3.client("elbv2", **kw)
        self.ecr = boto3.client("ecr", **kw)
        self.cw = boto3.client("cloudwatch", **kw)
        self.ssm = boto3.client("ssm", **kw)
        self.cluster = self.service["ecs"]["cluster"]
        self.container = self.service["ecs"]["container"]
        self.listeners = {
            "production": self.service["traffic"]["production_listener_arn"],
            "test": self.service["traffic"]["test_listener_arn"],
        }
        self.ports = {"production": self.config["production_port"], "test": self.config["test_port"]}
        self._task_definitions = {}

    def slot(self, name):
        return self.service["slots"][name]

    def slot_of_target_group(self, arn):
        return next(s for s in SLOTS if self.slot(s)["target_group_arn"] == arn)

    def ecs_service(self, slot):
        """(task definition ARN, desired count) of a slot's ECS service."""
        svc = self.ecs.describe_services(cluster=self.cluster, services=[self.slot(slot)["service"]])["services"][0]
        return svc["taskDefinition"], svc["desiredCount"]

    def task_definition(self, arn):
        if arn not in self._task_definitions:
            self._task_definitions[arn] = self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
        return self._task_definitions[arn]

    def version_of(self, arn):
        """The APP_VERSION the task definition gives its container (the scaffold sets it)."""
        for c in self.task_definition(arn)["containerDefinitions"]:
            if c["name"] == self.container:
                for e in c.get("environment", []):
                    if e["name"] == "APP_VERSION":
                        return e["value"]
        return "-"

    def forward(self, listener):
        """[(target group ARN, weight)] of a listener's default forward action."""
        actions = self.elb.describe_listeners(ListenerArns=[self.listeners[listener]])["Listeners"][0]["DefaultActions"]
        for action in actions:
            if action["Type"] == "forward":
                groups = action.get("ForwardConfig", {}).get("TargetGroups")
                if groups:
                    return [(g["TargetGroupArn"], g.get("Weight", 1)) for g in groups]
                return [(action["TargetGroupArn"], 1)]
        return []

    def weights(self):
        """Production weight per slot."""
        by_arn = dict(self.forward("production"))
        return {s: by_arn.get(self.slot(s)["target_group_arn"], 0) for s in SLOTS}

    def targets(self, slot):
        """Healthy registered targets of a slot's target group, as (address, port)."""
        out = self.elb.describe_target_health(TargetGroupArn=self.slot(slot)["target_group_arn"])
        return [
            (t["Target"]["Id"], t["Target"]["Port"])
            for t in out["TargetHealthDescriptions"]
            if t["TargetHealth"]["State"] == "healthy"
        ]

    def alarm_of(self, slot):
        """The slot's 5xx alarm, as the stack lists it under the slot (service.toml
        [slots.<slot>] alarms)."""
        names = [a for a in self.slot(slot).get("alarms", []) if a.endswith("-5xx")]
        if not names:
            raise SystemExit(f"agent: the stack lists no 5xx alarm under slots.{slot}.alarms")
        return names[0]

    def url(self, listener, path):
        return f"http://127.0.0.1:{self.ports[listener]}{path}"


def log(message):
    print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)


def http_get(url, timeout=3):
    """(status, body) of a GET, or (None, reason) when nothing answered."""
    host, _, rest = url.removeprefix("http://").partition("/")
    conn = http.client.HTTPConnection(host, timeout=timeout)
    try:
        conn.request("GET", "/" + rest)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace").strip()
    except OSError as e:
        return None, str(e)
    finally:
        conn.close()


# ---------------------------------------------------------------------------- serve


class Agent:
    """Plays the ECS agent for both slots; `running` is shared with the listeners."""

    def __init__(self, sb):
        self.sb = sb
        self.docker_config = os.path.join(sb.config["state_dir"], "docker-config")
        os.makedirs(self.docker_config, exist_ok=True)
        self.lock = threading.Lock()
        self.running = {}  # (address, port) -> {slot, td, container, version}
        self.failed = {}  # task definition ARN -> time of the last failed start
        self.logged_in = False

    def docker(self, *args, check=True):
        env = dict(os.environ, DOCKER_CONFIG=self.docker_config)
        out = subprocess.run(["docker", "-H", self.sb.config["docker_host"], *args],
                             capture_output=True, text=True, env=env)
        if check and out.returncode != 0:
            raise RuntimeError(f"docker {args[0]}: {out.stderr.strip()}")
        return out.stdout.strip()

    def login(self, image):
        """As the task execution role would: an ECR token, then a pull from the registry."""
        data = self.sb.ecr.get_authorization_token()["authorizationData"][0]
        user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
        env = dict(os.environ, DOCKER_CONFIG=self.docker_config)
        registry = image.split("/", 1)[0]
        out = subprocess.run(["docker", "-H", self.sb.config["docker_host"], "login", "-u", user,
                              "--password-stdin", registry], input=password, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            raise RuntimeError(f"docker login {registry}: {out.stderr.strip()}")
        self.logged_in = True

    def address(self, slot):
        """The next loopback address for a task of this slot (127.0.1.x blue, 127.0.2.x green)."""
        used = {a for (a, _), t in self.running.items() if t["slot"] == slot}
        n = SLOTS.index(slot) + 1
        return next(f"127.0.{n}.{i}" for i in range(1, 255) if f"127.0.{n}.{i}" not in used)

    def start(self, slot, td):
        definition = self.sb.task_definition(td)
        container = next(c for c in definition["containerDefinitions"] if c["name"] == self.sb.container)
        image, version = container["image"], self.sb.version_of(td)
        if not self.logged_in:
            self.login(image)
        self.docker("pull", "-q", image)
        address = self.address(slot)
        with socket.socket() as s:
            s.bind((address, 0))
            port = s.getsockname()[1]
        env = [a for e in container.get("environment", []) for a in ("-e", f"{e['name']}={e['value']}")]
        name = f"{slot}-{definition['family']}-{definition['revision']}-{address.rsplit('.', 1)[1]}"
        self.docker("rm", "-f", name, check=False)
        cid = self.docker("run", "-d", "--name", name, "--network", "host",
                          "-e", f"HOST={address}", "-e", f"PORT={port}", *env, image)
        for _ in range(100):
            try:
                socket.create_connection((address, port), timeout=0.2).close()
                break
            except OSError:
                if self.docker("inspect", "-f", "{{.State.Running}}", cid, check=False) == "false":
                    logs = self.docker("logs", "--tail", "20", cid, check=False)
                    self.docker("rm", "-f", cid, check=False)
                    raise RuntimeError(f"{name} exited: {logs}")
                time.sleep(0.1)
        else:
            self.docker("rm", "-f", cid, check=False)
            raise RuntimeError(f"{name} did not listen on {address}:{port} in 10s")
        with self.lock:
            self.running[(address, port)] = {"slot": slot, "td": td, "container": cid, "version": version}
        self.sb.elb.register_targets(TargetGroupArn=self.sb.slot(slot)["target_group_arn"],
                                     Targets=[{"Id": address, "Port": port}])
        log(f"{slot}: task {version} ({definition['family']}:{definition['revision']}) "
            f"running at {address}:{port}, registered in its target group")

    def stop(self, key):
        with self.lock:
            task = self.running.pop(key)
        address, port = key
        try:
            self.sb.elb.deregister_targets(TargetGroupArn=self.sb.slot(task["slot"])["target_group_arn"],
                                           Targets=[{"Id": address, "Port": port}])
        except Exception as e:  # already gone: nothing to drain
            log(f"{task['slot']}: deregistering {address}:{port}: {e}")
        self.docker("rm", "-f", task["container"], check=False)
        log(f"{task['slot']}: task {task['version']} at {address}:{port} deregistered and stopped")

    def reconcile(self, slot):
        td, desired = self.sb.ecs_service(slot)
        mine = [(k, t) for k, t in self.running.items() if t["slot"] == slot]
        for key, task in mine:
            if task["td"] != td:
                self.stop(key)
        current = [k for k, t in mine if t["td"] == td]
        while len(current) > desired:
            self.stop(current.pop())
        if len(current) < desired and time.time() - self.failed.get(td, 0) > 5:
            try:
                self.start(slot, td)
            except Exception as e:  # ECS would record a stopped task and try again
                self.failed[td] = time.time()
                self.logged_in = False
                log(f"{slot}: cannot start a task of {td}: {e}")

    def run(self, stop):
        while not stop.is_set():
            for slot in SLOTS:
                try:
                    self.reconcile(slot)
                except Exception as e:
                    log(f"{slot}: {e}")
            stop.wait(0.2)
        for key in list(self.running):
            self.stop(key)


def listener_handler(sb, agent, listener):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):
            pass

        def route(self):
            """A task to send this request to, as the listener's rules and weights say."""
            groups = [(arn, w) for arn, w in sb.forward(listener) if w > 0]
            if not groups:
                return None, "the listener forwards nowhere"
            arn = random.choices([a for a, _ in groups], weights=[w for _, w in groups])[0]
            slot = sb.slot_of_target_group(arn)
            td, _ = sb.ecs_service(slot)
            with agent.lock:
                tasks = [k for k in sb.targets(slot) if agent.running.get(k, {}).get("td") == td]
            if not tasks:
                return None, f"no healthy target in {slot}'s target group"
            return random.choice(tasks), slot

        def do_GET(self):
            self.proxy()

        def do_HEAD(self):
            self.proxy()

        def do_POST(self):
            self.proxy()

        def proxy(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                target, slot = self.route()
            except Exception as e:
                target, slot = None, f"reading the listener from moto: {e}"
            if target is None:
                return self.reply(503, {}, f"503 Service Unavailable: {slot}\n".encode())
            conn = http.client.HTTPConnection(*target, timeout=10)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                passed = {k: v for k, v in resp.getheaders()
                          if k.lower() not in ("connection", "content-length", "transfer-encoding")}
                passed["X-Sandbox-Slot"] = slot
                self.reply(resp.status, passed, data)
            except OSError as e:
                self.reply(502, {}, f"502 Bad Gateway: {target[0]}:{target[1]}: {e}\n".encode())
            finally:
                conn.close()

        def reply(self, status, headers, data):
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

    return Handler


def serve(sb, _args):
    agent = Agent(sb)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    servers = []
    for listener in ("production", "test"):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", sb.ports[listener]), listener_handler(sb, agent, listener))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        log(f"{listener} listener on {sb.url(listener, '/')}")
    agent.run(stop)
    for server in servers:
        server.shutdown()
    log("stopped every task it started")


# ------------------------------------------------------------------ eyes and hands


def slot_versions(sb):
    return {s: sb.version_of(sb.ecs_service(s)[0]) for s in SLOTS}


def traffic_line(sb):
    weights, versions = sb.weights(), slot_versions(sb)
    return "   ".join(f"{s} {weights[s]:>3}% {versions[s]:<7}" for s in SLOTS)


def show(sb, args):
    """Weights, versions, and what the listeners really answer; with --production/--test,
    fail unless every answer is that version."""
    print(f"  traffic     {traffic_line(sb)}")
    ok = True
    for listener, expected, n in (("production", args.production, 10), ("test", args.test, 3)):
        answers = [http_get(sb.url(listener, "/version")) for _ in range(n)]
        seen = sorted({
            body if status == 200 else f"HTTP {status}: {body}" if status else f"no answer: {body}"
            for status, body in answers
        })
        print(f"  {listener:<11} GET /version x{n} -> {', '.join(seen)}")
        if expected and seen != [expected.removeprefix("v")]:
            print(f"sandbox: the {listener} listener should serve only {expected}", file=sys.stderr)
            ok = False
    return 0 if ok else 1


def weights(sb, _args):
    w = sb.weights()
    print(" ".join(f"{s}={w[s]}" for s in SLOTS))


def watch(sb, args):
    """A line each time the production weights or a slot's version change, timed from
    --since (the epoch second the watched command started) like cutover's timeline."""
    started, last = args.since or time.time(), None
    while True:
        try:
            line = traffic_line(sb)
        except Exception:
            line = last
        if line != last:
            elapsed = int(time.time() - started)
            print(f"+{elapsed // 60:02}:{elapsed % 60:02}  {'traffic':<17} {line}", flush=True)
            last = line
        time.sleep(0.2)


def releases(value):
    """Every object in cutover's history parameter that names a version and a status."""
    if isinstance(value, dict):
        if "version" in value and "status" in value:
            yield value
        for v in value.values():
            yield from releases(v)
    elif isinstance(value, list):
        for v in value:
            yield from releases(v)


def baking(sb, version):
    """Whether cutover's history (its SSM parameter) says VERSION is in its bake."""
    try:
        text = sb.ssm.get_parameter(Name=sb.config["history_parameter"])["Parameter"]["Value"]
    except sb.ssm.exceptions.ParameterNotFound:
        return False
    return any(str(r["version"]).removeprefix("v") == version and r["status"] == "Baking"
               for r in releases(json.loads(text)))


def alarm_in_bake(sb, args):
    """Once production is all on VERSION and cutover bakes it, set that slot's 5xx alarm to
    ALARM, as the new version's errors would."""
    version = args.version.removeprefix("v")
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        w, versions = sb.weights(), slot_versions(sb)
        hit = [s for s in SLOTS if versions[s].removeprefix("v") == version and w[s] == 100]
        if hit and baking(sb, version):
            alarm = sb.alarm_of(hit[0])
            sb.cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM",
                                  StateReason=f"sandbox: {args.version} answers with 5xx")
            elapsed = int(time.time() - (args.since or time.time()))
            print(f"+{elapsed // 60:02}:{elapsed % 60:02}  {'alarm':<17} {alarm} -> ALARM "
                  f"(the sandbox fires it: {args.version} is baking on {hit[0]})", flush=True)
            return 0
        time.sleep(0.2)
    print(f"sandbox: {args.version} never baked with all production traffic in {args.timeout}s", file=sys.stderr)
    return 1


def alarm_live(sb, args):
    """Set the 5xx alarm of the slot with all production traffic to ALARM: the release
    running there is failing."""
    w, versions = sb.weights(), slot_versions(sb)
    live = [s for s in SLOTS if w[s] == 100]
    if not live:
        print(f"sandbox: no slot has all production traffic ({w})", file=sys.stderr)
        return 1
    alarm = sb.alarm_of(live[0])
    sb.cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM",
                          StateReason=f"sandbox: {versions[live[0]]} answers with 5xx")
    print(f"  alarm       {alarm} -> ALARM (the sandbox fires it: {versions[live[0]]} is failing on "
          f"{live[0]}, which has all production traffic)", flush=True)
    return 0


def clear_alarms(sb, _args):
    for slot in SLOTS:
        sb.cw.set_alarm_state(AlarmName=sb.alarm_of(slot), StateValue="OK", StateReason="sandbox: cleared")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve").set_defaults(run=serve)
    p = sub.add_parser("show")
    p.add_argument("--production", help="fail unless production serves only this version")
    p.add_argument("--test", help="fail unless the test listener serves only this version")
    p.set_defaults(run=show)
    sub.add_parser("weights").set_defaults(run=weights)
    p = sub.add_parser("watch")
    p.add_argument("--since", type=float, help="epoch seconds to time lines from (default: now)")
    p.set_defaults(run=watch)
    p = sub.add_parser("alarm-in-bake")
    p.add_argument("version")
    p.add_argument("--since", type=float, help="epoch seconds to time the line from")
    p.add_argument("--timeout", type=int, default=300)
    p.set_defaults(run=alarm_in_bake)
    sub.add_parser("alarm-live").set_defaults(run=alarm_live)
    sub.add_parser("clear-alarms").set_defaults(run=clear_alarms)
    args = parser.parse_args()
    sys.exit(args.run(Sandbox(args.config), args) or 0)


if __name__ == "__main__":
    main()

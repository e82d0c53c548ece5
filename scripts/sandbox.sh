#!/usr/bin/env bash
# The local sandbox (README, Set-up): cutover's whole story on this machine, with the real
# binary against the real local stack — dockerd, a registry playing ECR, moto for the AWS
# APIs — and the example service examples/hello, really built and pushed.
#
#   scripts/sandbox.sh [run] [--keep]   start the stack, create in moto what terraform/
#                                       creates, walk hello through the story, then stop
#                                       everything (or, with --keep, leave it up)
#   scripts/sandbox.sh down             stop everything a kept sandbox started, by pid
#
# State lives under ${CUTOVER_SANDBOX_DIR:-/tmp/cutover-sandbox}; every server listens on
# 127.0.0.1 on a free port, so a sandbox never meets the test services or another sandbox.
# moto runs no tasks and routes no traffic: scripts/sandbox_agent.py plays the ECS agent
# and the load balancer's listeners. Needs root (dockerd); installs what it needs.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
SANDBOX="${CUTOVER_SANDBOX_DIR:-/tmp/cutover-sandbox}"
VENV="${CUTOVER_VENV:-$HOME/.cache/cutover/venv}"
REGION=us-east-1
ENV_NAME=sandbox
SERVICE=hello
# The second member of the release train at the end of the story (examples/hello again,
# built from its own folder, behind its own load balancer).
SERVICE2=web
WORKER=jobs
LOG_TAG=sandbox
# shellcheck source=scripts/procs.sh
source "$repo/scripts/procs.sh"

usage() { sed -n '6,10s/^# \{0,1\}//p' "$0"; }

services() { CUTOVER_STATE_DIR="$SANDBOX/services" bash "$repo/scripts/services.sh" "$@"; }

# Helpers the story runs in the background (watch, alarm-in-bake), stopped on exit, and
# the cutover run of the current step.
HELPERS=()
RUNNING=

down() {
  local pid
  for pid in "${HELPERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "$RUNNING" ]; then
    # Interrupted mid-step: cutover stops at a safe point (traffic never left split) while
    # moto is still there to answer.
    echo "$RUNNING" >"$SANDBOX/cutover.pid"
    stop_pidfile "cutover (the current step)" "$SANDBOX/cutover.pid"
  fi
  stop_pidfile agent "$SANDBOX/agent/agent.pid"
  stop_pidfile "$SERVICE2's agent" "$SANDBOX/agent-$SERVICE2/agent.pid"
  if [ -d "$SANDBOX/services" ]; then services stop; fi
}

down_command() {
  [ -z "${CUTOVER_SANDBOX_DIR:-}" ] || printf 'CUTOVER_SANDBOX_DIR=%s ' "$SANDBOX"
  echo "bash scripts/sandbox.sh down"
}

fail() {
  echo >&2
  log "FAILED: $*"
  log "logs: $SANDBOX/steps/ (each step), $SANDBOX/agent/agent.log, $SANDBOX/services/*/"
  if $keep; then log "the stack is still up (--keep); stop it with: $(down_command)"; fi
  exit 1
}

# A fresh sandbox folder; refuses to empty a folder it did not make.
fresh_dir() {
  if [ -e "$SANDBOX" ] && [ ! -f "$SANDBOX/.cutover-sandbox" ] && [ -n "$(ls -A "$SANDBOX" 2>/dev/null)" ]; then
    log "$SANDBOX exists and is not a sandbox; set CUTOVER_SANDBOX_DIR to another folder"
    exit 2
  fi
  if [ -d "$SANDBOX" ]; then
    down
    # The marker goes last, so a removal that fails half-way can be retried.
    rm -rf "${SANDBOX:?}"/*
    rm -rf "$SANDBOX"
  fi
  mkdir -p "$SANDBOX/agent" "$SANDBOX/steps"
  touch "$SANDBOX/.cutover-sandbox" "$SANDBOX/aws-config" "$SANDBOX/aws-credentials"
}

build_cutover() {
  command -v cargo >/dev/null || { log "cargo not found; install the Rust toolchain (rustup) first"; exit 2; }
  echo "== building cutover (cargo build --locked)"
  cargo build --quiet --locked --manifest-path "$repo/Cargo.toml"
  BIN="${CARGO_TARGET_DIR:-$repo/target}/debug/cutover"
}

# moto gets what terraform/examples/complete would create, in terraform's output shape.
create_stack() { # service, output file
  "$VENV/bin/python" "$repo/tests/fixtures/moto_stack.py" "$MOTO" "$REGION" "$1" >"$2"
}

# The ECS agent and listeners of one service's stack; sets PROD_PORT and TEST_PORT.
start_agent() { # folder, stack file, service
  local dir=$1
  PROD_PORT=$(free_port)
  TEST_PORT=$(free_port)
  mkdir -p "$dir"
  cat >"$dir/config.json" <<EOF
{"endpoint": "$MOTO", "region": "$REGION", "stack": "$2",
 "docker_host": "$DOCKER", "state_dir": "$dir",
 "production_port": $PROD_PORT, "test_port": $TEST_PORT,
 "history_parameter": "/cutover/$ENV_NAME/$3/history"}
EOF
  launch "$dir" agent "$VENV/bin/python" -u "$repo/scripts/sandbox_agent.py" "$dir/config.json" serve
  # 503 from the production listener: up, and nothing deployed behind it yet.
  wait_for "$dir/agent.log" 30 sh -c "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PROD_PORT/ | grep -q 503"
  log "$3: ECS agent and listeners: production http://127.0.0.1:$PROD_PORT, test http://127.0.0.1:$TEST_PORT"
}

AGENT=("$VENV/bin/python" "$repo/scripts/sandbox_agent.py" "$SANDBOX/agent/config.json")
agent() { "${AGENT[@]}" "$@"; }
AGENT2=("$VENV/bin/python" "$repo/scripts/sandbox_agent.py" "$SANDBOX/agent-$SERVICE2/config.json")
agent2() { "${AGENT2[@]}" "$@"; }

# Exact text edits of a scaffolded file; a miss means the scaffold changed: fail loudly.
edit() { # file, from, to [, from, to …]
  "$VENV/bin/python" - "$@" <<'EOF'
import sys
path, pairs = sys.argv[1], sys.argv[2:]
text = open(path).read()
for old, new in zip(pairs[::2], pairs[1::2]):
    if old not in text:
        sys.exit(f"sandbox: {path} no longer contains {old!r}; update scripts/sandbox.sh")
    text = text.replace(old, new, 1)
open(path, "w").write(text)
EOF
}

# The example's repository: examples/hello as app/, a deploy/ folder from
# `cutover init --from-terraform`, and a commit per release.
write_project() {
  WORK="$SANDBOX/work"
  mkdir -p "$WORK"
  cp -r "$repo/examples/hello" "$WORK/app"
  cp /bin/busybox "$WORK/app/busybox"
  printf 'app/busybox\nbuild/\n' >"$WORK/.gitignore"
  git -C "$WORK" init -q
  (cd "$WORK" && cutover init --env "$ENV_NAME" --service "$SERVICE" --from-terraform "$SANDBOX/stack.json" >/dev/null)
  local env_toml="$WORK/deploy/environments/$ENV_NAME/environment.toml"
  local svc_toml="$WORK/deploy/services/$SERVICE/service.toml"
  # The registry playing ECR, reached with moto's ECR token; deploy promotes without a
  # separate approval (stage still holds a release until promote).
  edit "$env_toml" \
    $'\nssm_prefix = ' $'\nregistry = "'"$REGISTRY"$'"\nssm_prefix = ' \
    "required = true" "required = false"
  tune_service "$svc_toml" app "$TEST_PORT"
  git -C "$WORK" add -A
  git -C "$WORK" -c user.name=sandbox -c user.email=sandbox@localhost commit -qm "hello: deploy/ from cutover init --from-terraform"
}

# A service's settings for the sandbox: its build context, probes to its agent's test
# listener, minutes become seconds so the story is short.
tune_service() { # service.toml, context folder, test listener port
  edit "$1" \
    'context = "."' "context = \"$2\"" \
    'test_url = "http://127.0.0.1:1"' "test_url = \"http://127.0.0.1:$3\"" \
    $'percent = 10\nwait = "5m"\nbake = "10m"' $'percent = 25\nwait = "4s"\nbake = "8s"' \
    $'expect_status = 200\n# body_contains = "ok"' $'expect_status = 200\nbody_contains = "ok"\ninterval = "300ms"\nconsecutive_successes = 3\nattempts = 10' \
    $'stabilize = "10m"\nvalidate = "10m"' $'stabilize = "60s"\nvalidate = "60s"'
}

# The train's second service: its own stack and agent, examples/hello again as web/, its
# deploy/services/web/ from `cutover init` (into a scratch folder: the environment exists).
add_second_service() {
  create_stack "$SERVICE2" "$SANDBOX/stack-$SERVICE2.json"
  start_agent "$SANDBOX/agent-$SERVICE2" "$SANDBOX/stack-$SERVICE2.json" "$SERVICE2"
  local scratch="$SANDBOX/init-$SERVICE2"
  mkdir -p "$scratch"
  (cd "$scratch" && cutover init --env "$ENV_NAME" --service "$SERVICE2" --from-terraform "$SANDBOX/stack-$SERVICE2.json" >/dev/null)
  cp -r "$scratch/deploy/services/$SERVICE2" "$WORK/deploy/services/"
  tune_service "$WORK/deploy/services/$SERVICE2/service.toml" "$SERVICE2" "$TEST_PORT"
  cp -r "$repo/examples/hello" "$WORK/$SERVICE2"
  cp /bin/busybox "$WORK/$SERVICE2/busybox"
  printf '%s/busybox\n' "$SERVICE2" >>"$WORK/.gitignore"
  git -C "$WORK" add -A
  git -C "$WORK" -c user.name=sandbox -c user.email=sandbox@localhost commit -qm "$SERVICE2: a second service, released with hello as one train"
}

# The train's worker (issue 17.4): a queue consumer with no load balancer, one ECS service
# in hello's cluster (created at 0 tasks as terraform would, then run at 1), built from
# hello's context into hello's repository (one build input: built once per tag), its
# service.toml a `[worker]` with a short bake. moto keeps ECS as records, so the worker
# "runs" there only: the story checks what ECS and the history say.
add_worker() {
  local dir="$WORK/deploy/services/$WORKER"
  mkdir -p "$dir"
  "$VENV/bin/python" - "$MOTO" "$REGION" "$SANDBOX/stack.json" "$WORKER" <<'EOF2'
import json, sys
import boto3
endpoint, region, stack, name = sys.argv[1:]
s = json.load(open(stack))
ecs = boto3.client("ecs", endpoint_url=endpoint, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
cluster = s["cutover_service"]["value"]["ecs"]["cluster"]
initial = s["initial_task_definition"]["value"]
ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=initial, desiredCount=0, launchType="FARGATE")
ecs.update_service(cluster=cluster, service=name, desiredCount=1)
EOF2
  local cluster repository
  cluster=$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cutover_service"]["value"]["ecs"]["cluster"])' "$SANDBOX/stack.json")
  repository=$(sed -n 's/^repository = "\(.*\)"$/\1/p' "$WORK/deploy/services/$SERVICE/service.toml" | head -1)
  cat >"$dir/service.toml" <<EOF2
# A worker: no load balancer, rolled in place with its train after every web member validated.
[image]
repository = "$repository"
context = "app"

[ecs]
cluster = "$cluster"
container = "$WORKER"

[worker]
service = "$WORKER"

[strategy]
kind = "all-at-once"
bake = "4s"

[deadlines]
stabilize = "60s"
EOF2
  sed -e 's/"name": "web"/"name": "'"$WORKER"'"/' -e '/portMappings/d' \
    -e 's/"family": "[^"]*"/"family": "'"$WORKER"'"/' \
    "$WORK/deploy/services/$SERVICE/taskdef.json" >"$dir/taskdef.json"
  cp "$WORK/deploy/services/$SERVICE/variables.json" "$dir/"
  git -C "$WORK" add -A
  git -C "$WORK" -c user.name=sandbox -c user.email=sandbox@localhost commit -qm "$WORKER: a worker, released with the train"
}

# A release: the version page says it, the commit is tagged (cutover builds from HEAD).
release() { # version, what changed
  local app
  for app in "$WORK/app" "$WORK/$SERVICE2"; do
    if [ -d "$app" ]; then printf '%s\n' "${1#v}" >"$app/www/version"; fi
  done
  git -C "$WORK" add -A
  git -C "$WORK" -c user.name=sandbox -c user.email=sandbox@localhost commit -qm "hello $1: $2"
  git -C "$WORK" tag "$1"
}

# The real binary, pointed at moto (the SDK's standard AWS_ENDPOINT_URL) and the sandbox's
# dockerd; nothing inherited from this machine's AWS, GitHub or cutover settings. The same
# settings go to $SANDBOX/env, for exploring a kept sandbox by hand.
write_env() {
  cat >"$SANDBOX/env" <<EOF
export AWS_ENDPOINT_URL=$MOTO AWS_REGION=$REGION AWS_EC2_METADATA_DISABLED=true
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export AWS_CONFIG_FILE=$SANDBOX/aws-config AWS_SHARED_CREDENTIALS_FILE=$SANDBOX/aws-credentials
export DOCKER_HOST=$DOCKER CUTOVER_ENV=$ENV_NAME CUTOVER_SERVICE=$SERVICE
export PATH="$(dirname "$BIN"):\$PATH"
EOF
}

cutover_env() {
  for v in $(compgen -e | grep -E '^(AWS_|GITHUB_|CUTOVER_)|^RUST_LOG$|^CI$'); do unset "$v"; done
  # shellcheck source=/dev/null
  source "$SANDBOX/env"
  # The console timeline tells the story; logs only for warnings (at info, some cutover
  # versions log each status change beside the timeline's line for it).
  export CUTOVER_LOG=warn
}

cutover() { (cutover_env && exec "$BIN" "$@"); }

STEP=0
STARTED=$SECONDS
# One step of the story: runs cutover in the project, shows its timeline with the traffic
# changes beside it, and requires the exit code the story expects.
step() { # expected exit code, title, cutover args...
  local want=$1 title=$2 got=0 run tailer watcher=
  shift 2
  STEP=$((STEP + 1))
  echo
  echo "== $STEP. $title   [$(((SECONDS - STARTED) / 60))m$(((SECONDS - STARTED) % 60))s]"
  echo "\$ cutover $*"
  : >"$SANDBOX/steps/$STEP.log"
  case "$1" in
    deploy | stage | promote | rollback)
      "${AGENT[@]}" watch --since "$(date +%s.%N)" &
      watcher=$!
      HELPERS+=("$watcher")
      ;;
  esac
  (cd "$WORK" && cutover_env && exec "$BIN" "$@") >"$SANDBOX/steps/$STEP.log" 2>&1 &
  run=$!
  RUNNING=$run
  # In the background, so that a signal reaches the traps at once (the wait builtin is
  # interruptible; a foreground command is not).
  tail --pid=$run -n +1 -f "$SANDBOX/steps/$STEP.log" &
  tailer=$!
  wait $run || got=$?
  RUNNING=
  wait $tailer || true
  if [ -n "$watcher" ]; then
    sleep 0.3
    kill "$watcher" 2>/dev/null || true
    wait "$watcher" 2>/dev/null || true
  fi
  [ "$got" = "$want" ] || fail "step $STEP: cutover $* exited $got; the story expects $want"
  echo "   exit $got, as expected"
}

step_log() { cat "$SANDBOX/steps/$STEP.log"; }
expect_text() { # text: the last step's output must contain it
  step_log | grep -qF -- "$1" || fail "step $STEP: its output does not say \"$1\""
}

# Issue 18.1 and 18.4: the promote just made rehearsed its rollback (on by default outside
# environments named production/prod/prd): back to v1.0.0 on its warm slot and forward
# again, each way read back and probed. The release's timeline is kept in history.
rehearsal() {
  expect_text "rollback rehearsal passed: back to v1.0.0"
  step 0 "status --release v1.1.0: the release's kept timeline, every status change with its time" \
    status --release v1.1.0
  expect_text "Shifting(100%)"
  expect_text "Promoted"
}

story() {
  local before
  step 0 "preflight: what terraform would have created is there and wired" verify
  expect_text "checks passed"

  release v1.0.0 "first release"
  step 0 "v1.0.0: first deploy (build, push, stage, validate, promote with a canary)" \
    deploy --tag v1.0.0
  expect_text "v1.0.0 promoted"
  agent show --production v1.0.0 || fail "production should serve v1.0.0"

  release v1.1.0 "a new feature"
  before=$(agent weights)
  step 0 "v1.1.0: staged on the idle slot and held; production stays on v1.0.0" \
    stage --tag v1.1.0
  expect_text "staged on"
  [ "$(agent weights)" = "$before" ] || fail "stage moved production traffic: $before -> $(agent weights)"
  agent show --production v1.0.0 --test v1.1.0 || fail "production should still serve v1.0.0, the test listener v1.1.0"

  step 0 "status: v1.0.0 live, v1.1.0 awaiting approval" status
  expect_text "v1.1.0"

  step 0 "v1.1.0: validated by the probes at stage; promote shifts with a canary" \
    promote --tag v1.1.0
  expect_text "v1.1.0 promoted"
  agent show --production v1.1.0 || fail "production should serve v1.1.0"
  rehearsal

  git -C "$WORK" rm -q app/www/health
  release v1.2.0 "a refactor that loses the health page"
  before=$(agent weights)
  step 1 "v1.2.0 is broken (/health answers 404): stage fails, production untouched" \
    stage --tag v1.2.0
  [ "$(agent weights)" = "$before" ] || fail "a failed stage moved production traffic: $before -> $(agent weights)"
  agent show --production v1.1.0 || fail "production should still serve v1.1.0"

  printf 'ok\n' >"$WORK/app/www/health"
  release v1.3.0 "the health page is back"
  "${AGENT[@]}" alarm-in-bake v1.3.0 --since "$(date +%s.%N)" &
  local alarm=$!
  HELPERS+=("$alarm")
  step 1 "v1.3.0: promoted, then its 5xx alarm fires during the bake: cutover rolls back by itself" \
    deploy --tag v1.3.0
  wait "$alarm" || fail "the alarm never fired: v1.3.0 never baked with all production traffic"
  expect_text "Baking"
  expect_text "rolled back"
  agent show --production v1.1.0 || fail "production should be back on v1.1.0"
  agent clear-alarms

  step 0 "rollback --to v1.0.0: the release from history, redeployed by digest, validated and baked" \
    rollback --to v1.0.0
  expect_text "v1.0.0 live"
  agent show --production v1.0.0 || fail "production should serve v1.0.0"

  # The bad day: the release in production starts failing. Its slot's alarm is no gate for
  # the hotfix, which is staged on the other slot and promoted away from it.
  agent alarm-live || fail "could not fire the live slot's alarm"
  release v1.4.0 "the hotfix"
  step 0 "incident: v1.0.0 is failing (its slot's 5xx alarm in ALARM); v1.4.0 ships as a hotfix, promoted away from it" \
    deploy --tag v1.4.0
  expect_text "not a gate for staging on"
  expect_text "traffic is moving away from"
  expect_text "v1.4.0 promoted"
  agent show --production v1.4.0 || fail "production should serve the hotfix v1.4.0"
  agent clear-alarms

  step 0 "status: live slot, weights and the history of the story" status
  for v in v1.0.0 v1.1.0 v1.2.0 v1.3.0 v1.4.0; do expect_text "$v"; done

  cleanup_listing
  train
}

# Issue 17: hello and web as one release train. First web's first release and hello's next
# go out together; then web loses its health page, so web fails validation and the whole
# train stops: hello, validated, is recorded Failed too, and both keep serving v1.5.0.
train() {
  add_second_service
  release v1.5.0 "hello and web, released together"
  step 0 "train: hello and web v1.5.0 as one release (images built at once, staged together, shifted in lockstep)" \
    deploy --service "$SERVICE,$SERVICE2" --tag v1.5.0
  expect_text "train Promoted"
  agent show --production v1.5.0 || fail "hello should serve v1.5.0"
  agent2 show --production v1.5.0 || fail "web should serve v1.5.0"

  git -C "$WORK" rm -q "$SERVICE2/www/health"
  release v1.6.0 "web loses its health page"
  step 1 "train: v1.6.0 with web broken (/health 404): web fails validation, so neither service moves" \
    deploy --service "$SERVICE,$SERVICE2" --tag v1.6.0
  expect_text "train Failed"
  expect_text "the train failed ($SERVICE2 did not stage)"
  agent show --production v1.5.0 || fail "hello should still serve v1.5.0"
  agent2 show --production v1.5.0 || fail "web should still serve v1.5.0"

  git -C "$WORK" checkout -q v1.5.0 -- "$SERVICE2/www/health"
  add_worker
  release v1.7.0 "web's health page is back; a worker joins"
  step 0 "train with a worker: hello, web and $WORKER v1.7.0 ($WORKER rolled in place once both web services validated, before the shift)" \
    deploy --service "$SERVICE,$SERVICE2,$WORKER" --tag v1.7.0
  expect_text "train Promoted"
  expect_text "rolling"
  agent show --production v1.7.0 || fail "hello should serve v1.7.0"
  agent2 show --production v1.7.0 || fail "web should serve v1.7.0"
  step 0 "status of the train: every member, the worker's one service, and the train as a whole" \
    status --service "$SERVICE,$SERVICE2,$WORKER"
  expect_text "live       v1.7.0 (worker: ECS service $WORKER, rolled in place; 1/1 tasks running)"
  expect_text "train      every member runs v1.7.0"
}

# What `cutover cleanup` would remove after the story, and why it keeps the rest: a dry
# run (the default), so nothing is removed. Keeping only the newest revision beyond what
# is referenced, the task definitions of both slots and of every release in the history
# stay; terraform's bootstrap revision, which nothing references any more, would go. (The
# images live in the sandbox's registry, not in moto's ECR: the image list is empty here.)
cleanup_listing() {
  local before
  printf '\n[cleanup]\nkeep_task_definitions = 1\n' >>"$WORK/deploy/services/$SERVICE/service.toml"
  before=$(agent weights)
  step 0 "cleanup (dry run): what nothing references any more, and why the rest stays" cleanup
  expect_text "run by blue (live"
  expect_text "history: v1.2.0 (Failed)"
  expect_text "remove  $SERVICE-test:1"
  expect_text "would remove: 1 task definition(s)"
  expect_text "dry run: nothing removed"
  [ "$(agent weights)" = "$before" ] || fail "a cleanup dry run moved production traffic"
  agent show --production v1.4.0 || fail "production should still serve v1.4.0"
}

run() {
  fresh_dir
  command -v git >/dev/null || { log "git not found; apt-get install git"; exit 2; }
  bash "$repo/scripts/install.sh" stack
  build_cutover
  $keep || trap down EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  echo "== starting the local stack in $SANDBOX"
  services start
  eval "$(services env)"
  DOCKER=$CUTOVER_TEST_DOCKER_HOST REGISTRY=$CUTOVER_TEST_REGISTRY MOTO=$CUTOVER_TEST_MOTO_ENDPOINT
  create_stack "$SERVICE" "$SANDBOX/stack.json"
  write_env
  start_agent "$SANDBOX/agent" "$SANDBOX/stack.json" "$SERVICE"
  write_project
  story
  echo
  echo "== the story ran as expected in $(((SECONDS - STARTED) / 60))m$(((SECONDS - STARTED) % 60))s"
  if $keep; then
    cat <<EOF
The stack is still up; stop it with: $(down_command)
  production listener  curl http://127.0.0.1:$PROD_PORT/version
  test listener        curl http://127.0.0.1:$TEST_PORT/version
  cutover against it   cd $WORK && source ../env && cutover status
  the project          $WORK (deploy/, build/ with what was deployed, app/, git log)
EOF
  fi
}

cmd=run keep=false
for arg in "$@"; do
  case "$arg" in
    run | down) cmd=$arg ;;
    --keep) keep=true ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case "$cmd" in
  run) run ;;
  down) down ;;
esac

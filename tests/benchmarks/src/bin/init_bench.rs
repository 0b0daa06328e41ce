//! Cold start, memory and size of every function, against a hello-world
//! Lambda built in the same run.
//!
//!     cargo run --profile local -p benchmarks --bin init-bench -- [--runs 21] [--profile release] [--no-build]
//!
//! (`CARGO_TARGET_DIR=target/aws` before `cargo run` builds the release
//! binaries there, so the local build stays usable meanwhile.)
//!
//! Builds the six functions and `hello-lambda` with the AWS profile
//! (`release`: LTO, one codegen unit, stripped; what `sam build` deploys)
//! in one cargo invocation, for this machine's architecture. Then, for each
//! binary, `--runs` times, interleaved so drift hits all alike: starts it
//! against a fake Lambda Runtime API on 127.0.0.1 and measures the time
//! from `exec` to its first `GET /2018-06-01/runtime/invocation/next`
//! (init done, ready for an event), and its peak resident memory at that
//! moment (`VmHWM`). Prints a table with the ratio of each to the baseline,
//! and the targets (≤ 6 MB, ≤ 2× the baseline's init, ≤ 8 MB RSS).
//!
//! Passwords are given as values (`CARRIER_PASSWORD`, `WEBHOOK_PASSWORD`),
//! not secret ARNs, so no network call is timed: on AWS the functions with a
//! password add one `GetSecretValue` to their cold start.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FUNCTIONS: [&str; 6] = [
    "messages-api",
    "practice-api",
    "carrier-webhook",
    "dispatcher",
    "media-copier",
    "event-delivery",
];
const BASELINE: &str = "hello-lambda";

fn arg(name: &str, default: &str) -> String {
    std::env::args()
        .skip_while(|a| a != name)
        .nth(1)
        .unwrap_or_else(|| default.to_string())
}

/// Every variable any function reads, with harmless values.
fn environment(runtime_api: &str) -> Vec<(&'static str, String)> {
    let queue = "https://sqs.us-east-1.amazonaws.com/123456789012/queue".to_string();
    let arn = |what: &str| format!("arn:aws:sqs:us-east-1:123456789012:{what}");
    vec![
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "bench".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "bench".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("RUST_LOG", "info".into()),
        ("TABLE_NAME", "messaging".into()),
        ("SEND_QUEUE_URL", queue.clone()),
        ("SEND_QUEUE_ARN", arn("send")),
        ("SEND_DEAD_LETTER_QUEUE_ARN", arn("send-dlq")),
        ("MEDIA_QUEUE_URL", queue.clone()),
        ("EVENT_QUEUE_URL", queue),
        ("EVENT_QUEUE_ARN", arn("events")),
        ("MEDIA_BUCKET", "media".into()),
        ("SCHEDULE_GROUP", "sends".into()),
        (
            "SCHEDULER_ROLE_ARN",
            "arn:aws:iam::123456789012:role/scheduler".into(),
        ),
        ("SCHEDULE_DLQ_ARN", arn("schedule-dlq")),
        ("QUEUE_DELAY_MAX_SECONDS", "900".into()),
        ("NUMBER_MESSAGES_PER_SECOND", "1".into()),
        ("SEND_CONFIRM_WAIT_SECONDS", "120".into()),
        ("ALLOW_LOCAL_EVENT_ENDPOINTS", "false".into()),
        (
            "EVENT_RETRY_SCHEDULE",
            "5,300,1800,7200,18000,36000,50400,72000,86400".into(),
        ),
        ("CARRIER_ACCOUNT_ID", "9900000".into()),
        ("CARRIER_APPLICATION_ID", "app".into()),
        ("CARRIER_USERNAME", "user".into()),
        ("CARRIER_PASSWORD", "password".into()),
        ("WEBHOOK_USERNAME", "user".into()),
        ("WEBHOOK_PASSWORD", "password".into()),
    ]
}

/// One cold start: (time to the first `/next`, peak RSS in bytes).
fn cold_start(binary: &Path) -> Result<(Duration, u64), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let api = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(environment(&api))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let deadline = started + Duration::from_secs(10);
    let outcome = loop {
        if Instant::now() > deadline {
            break Err("no request to the runtime API within 10 s".to_string());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                e.read_to_string(&mut err).ok();
            }
            break Err(format!(
                "exited ({status}) before asking for an event: {err}"
            ));
        }
        match listener.accept() {
            Ok((mut socket, _)) => {
                socket.set_nonblocking(false).ok();
                let mut buf = [0u8; 1024];
                let n = socket.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let line = request.lines().next().unwrap_or_default().to_string();
                if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                    let took = started.elapsed();
                    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                        .unwrap_or_default();
                    let hwm_kb: u64 = status
                        .lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    break Ok((took, hwm_kb * 1024));
                }
                // An init error report or anything else: answer and fail.
                socket
                    .write_all(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n")
                    .ok();
                break Err(format!("asked {line} before the first event"));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_micros(200));
            }
            Err(e) => break Err(e.to_string()),
        }
    };
    child.kill().ok();
    child.wait().ok();
    outcome
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

fn main() {
    let runs: usize = arg("--runs", "21").parse().expect("--runs N");
    let profile = arg("--profile", "release");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !std::env::args().any(|a| a == "--no-build") {
        let mut build = Command::new(env!("CARGO"));
        build
            .current_dir(&root)
            .args(["build", "--locked", "--profile", &profile]);
        for name in FUNCTIONS.iter().chain([&BASELINE]) {
            build.args(["-p", name]);
        }
        let started = Instant::now();
        let status = build.status().expect("cargo");
        assert!(status.success(), "build failed");
        println!("built in {:.0} s", started.elapsed().as_secs_f64());
    }
    // A separate target directory (CARGO_TARGET_DIR) keeps the release
    // build from holding the local build's lock for its twenty minutes.
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let dir = target.join(&profile);
    let names: Vec<&str> = std::iter::once(BASELINE).chain(FUNCTIONS).collect();
    let mut times: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut rss: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..runs {
        for name in &names {
            match cold_start(&dir.join(name)) {
                Ok((took, hwm)) => {
                    times
                        .entry(name)
                        .or_default()
                        .push(took.as_secs_f64() * 1000.0);
                    rss.entry(name).or_default().push(hwm as f64 / 1_048_576.0);
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
    }
    let base_ms = median(times[BASELINE].clone());
    println!(
        "\n{} interleaved cold starts each, profile `{profile}`, {}\n",
        runs,
        std::env::consts::ARCH
    );
    println!("| binary | init median | ratio to hello | peak RSS | size | ≤ 6 MB | ≤ 2× init | ≤ 8 MB RSS |");
    println!("|---|---|---|---|---|---|---|---|");
    for name in &names {
        let ms = median(times[name].clone());
        let mb = median(rss[name].clone());
        let size = std::fs::metadata(dir.join(name)).map_or(0, |m| m.len()) as f64 / 1_048_576.0;
        let ok = |b: bool| if b { "yes" } else { "no" };
        println!(
            "| {name} | {ms:.1} ms | {:.2} | {mb:.1} MB | {size:.1} MB | {} | {} | {} |",
            ms / base_ms,
            ok(size <= 6.0),
            ok(ms <= 2.0 * base_ms),
            ok(mb <= 8.0)
        );
    }
}

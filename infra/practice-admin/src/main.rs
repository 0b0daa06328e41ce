//! `practice-admin`: the only way to create a practice or get an API key.
//!
//! ```text
//! practice-admin create --name "Bright Smiles" --timezone America/New_York --main +14155550100
//!                       [--alt +1...] [--practice-id ID] [--hourly-cap 250] [--cap-window-seconds 3600]
//!                       [--max-bulk-recipients 1000] [--quiet-hours 08:00-21:00|off] [--help-text "..."]
//!                       [--carrier bandwidth|aws]
//! practice-admin update --practice-id ID [same options as create] [--no-alt]
//! practice-admin rotate-key --practice-id ID
//! practice-admin show --practice-id ID
//! practice-admin requeue-dead-letters
//! practice-admin add-staff --practice-id ID --user NAME --name "Shown Name" --role admin|staff
//! practice-admin set-password --user NAME
//! practice-admin list-staff --practice-id ID
//! ```
//! `add-staff` and `set-password` read the password from `STAFF_PASSWORD`,
//! else ask for it on the terminal (not echoed), else read one line from
//! standard input; it is never printed, and stored only as an Argon2id hash.
//! `set-password` also ends the account's sessions.
//! `--carrier` says which carrier the practice's numbers are on: `bandwidth`
//! (the default) or `aws` (AWS End User Messaging SMS in the deployment's
//! account: the numbers must be origination identities of that account,
//! see README "Deploy to AWS").
//! Needs `TABLE_NAME` (and the usual AWS settings). `create` and `rotate-key`
//! print the API key once, as JSON; only its SHA-256 digest is stored.
//! `requeue-dead-letters` (also needs `SEND_QUEUE_URL`) puts back on the send
//! queue every job set aside from its dead-letter queue that is safe to send
//! again, and prints what it requeued and dropped
//! (`messaging_core::app::dead_letters`).

use std::collections::HashMap;
use std::process::ExitCode;

use messaging_adapters::dynamo::DynamoStore;
use messaging_core::app::auth::{generate_key, hash_key};
use messaging_core::domain::carrier::CarrierKind;
use messaging_core::domain::phone::PhoneNumber;
use messaging_core::domain::practice::{
    Channels, Practice, QuietHours, DEFAULT_CAP_WINDOW_SECONDS, DEFAULT_HOURLY_CAP,
    DEFAULT_MAX_BULK_RECIPIENTS,
};
use messaging_core::ports::PracticeStore;

const USAGE: &str = "usage: practice-admin <create|update|rotate-key|show|requeue-dead-letters|add-staff|set-password|list-staff> [--option value]... (see the source header or README)";

/// The new password: `STAFF_PASSWORD`, else asked on the terminal without
/// echo, else one line of standard input. Never printed.
fn read_password() -> Result<String, String> {
    use std::io::{BufRead, IsTerminal, Write};
    if let Ok(p) = std::env::var("STAFF_PASSWORD") {
        if !p.is_empty() {
            return Ok(p);
        }
    }
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    let stty = |arg: &str| {
        std::fs::File::open("/dev/tty")
            .ok()
            .and_then(|tty| {
                std::process::Command::new("stty")
                    .arg(arg)
                    .stdin(tty)
                    .status()
                    .ok()
            })
            .is_some_and(|s| s.success())
    };
    if interactive {
        eprint!("Password for the staff account (not shown): ");
        std::io::stderr().flush().map_err(|e| e.to_string())?;
        if !stty("-echo") {
            return Err("could not turn off echo; set STAFF_PASSWORD instead".into());
        }
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if interactive {
        stty("echo");
        eprintln!();
    }
    read.map_err(|e| e.to_string())?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err("no password given (STAFF_PASSWORD, the terminal or standard input)".into());
    }
    Ok(password)
}

struct Args {
    command: String,
    options: HashMap<String, String>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let command = it.next().ok_or(USAGE)?;
    let mut options = HashMap::new();
    while let Some(flag) = it.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}; {USAGE}"))?;
        if name == "no-alt" {
            options.insert(name.to_string(), String::new());
            continue;
        }
        let value = it.next().ok_or_else(|| format!("--{name} needs a value"))?;
        options.insert(name.to_string(), value);
    }
    Ok(Args { command, options })
}

fn number<T: std::str::FromStr>(
    options: &HashMap<String, String>,
    name: &str,
    default: T,
) -> Result<T, String> {
    match options.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("--{name} must be a whole number, got {v:?}")),
    }
}

fn phone(value: &str, name: &str) -> Result<PhoneNumber, String> {
    PhoneNumber::parse(value).map_err(|e| format!("--{name} {value:?} {e}"))
}

/// `--automatic-window 09:00-20:00/08:00` (opens, closes, opens on the
/// appointment's day) or `off` (automatic texts at any time).
fn automatic_window(
    value: &str,
) -> Result<Option<messaging_core::domain::practice::AutomaticWindow>, String> {
    if value.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || format!("--automatic-window {value:?} must look like 09:00-20:00/08:00 or off");
    let (hours, day_of_start) = value.split_once('/').ok_or_else(bad)?;
    let (start, end) = hours.split_once('-').ok_or_else(bad)?;
    let window: messaging_core::domain::practice::AutomaticWindow = serde_json::from_value(
        serde_json::json!({"start": start.trim(), "end": end.trim(), "day_of_start": day_of_start.trim()}),
    )
    .map_err(|_| bad())?;
    window
        .validate()
        .map_err(|e| format!("--automatic-window: {e}"))?;
    Ok(Some(window))
}

/// Applies the options given to `practice` (all optional for `update`).
fn apply_options(mut practice: Practice, o: &HashMap<String, String>) -> Result<Practice, String> {
    if let Some(v) = o.get("name") {
        practice.name = v.clone();
    }
    if let Some(v) = o.get("timezone") {
        practice.timezone = v.parse().map_err(|e| format!("--timezone: {e}"))?;
    }
    if let Some(v) = o.get("main") {
        practice.channels.sms_main = phone(v, "main")?;
    }
    if let Some(v) = o.get("alt") {
        practice.channels.sms_alt = Some(phone(v, "alt")?);
    }
    if o.contains_key("no-alt") {
        practice.channels.sms_alt = None;
    }
    practice.hourly_cap = number(o, "hourly-cap", practice.hourly_cap)?;
    practice.cap_window_seconds = number(o, "cap-window-seconds", practice.cap_window_seconds)?;
    practice.max_bulk_recipients = number(o, "max-bulk-recipients", practice.max_bulk_recipients)?;
    if let Some(v) = o.get("help-text") {
        messaging_core::domain::merge::check_fields(v, "help-text").map_err(|e| e.message)?;
        practice.help_text = Some(v.clone());
    }
    if let Some(v) = o.get("quiet-hours") {
        practice.quiet_hours = QuietHours::parse_setting(v)?;
    }
    if let Some(v) = o.get("automatic-window") {
        practice.automatic_window = automatic_window(v)?;
    }
    if let Some(v) = o.get("carrier") {
        practice.carrier = CarrierKind::parse(v)
            .ok_or_else(|| format!("--carrier must be bandwidth or aws, got {v:?}"))?;
    }
    practice.validate()?;
    Ok(practice)
}

async fn run(args: Args, store: DynamoStore) -> Result<serde_json::Value, String> {
    let o = &args.options;
    let id_arg = || {
        o.get("practice-id")
            .cloned()
            .ok_or("--practice-id is required".to_string())
    };
    let existing = |id: String| {
        let store = store.clone();
        async move {
            store
                .get_practice(&id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no practice {id}"))
        }
    };
    match args.command.as_str() {
        "create" => {
            let id = o
                .get("practice-id")
                .cloned()
                .unwrap_or_else(messaging_core::app::messages::new_message_id);
            messaging_core::domain::patient::validate_id(&id, "practice-id")
                .map_err(|e| e.message)?;
            if store
                .get_practice(&id)
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return Err(format!(
                    "practice {id} already exists; use update or rotate-key"
                ));
            }
            let main = o
                .get("main")
                .ok_or("--main (the main SMS number) is required")?;
            let draft = Practice {
                practice_id: id.clone(),
                name: o.get("name").cloned().ok_or("--name is required")?,
                timezone: o
                    .get("timezone")
                    .map_or("America/New_York", String::as_str)
                    .parse()
                    .map_err(|e| format!("--timezone: {e}"))?,
                channels: Channels {
                    sms_main: phone(main, "main")?,
                    sms_alt: None,
                },
                hourly_cap: DEFAULT_HOURLY_CAP,
                cap_window_seconds: DEFAULT_CAP_WINDOW_SECONDS,
                max_bulk_recipients: DEFAULT_MAX_BULK_RECIPIENTS,
                quiet_hours: QuietHours::parse_setting("08:00-21:00")?,
                help_text: None,
                auto_reply: Default::default(),
                automatic_window:
                    messaging_core::domain::practice::AutomaticWindow::default_setting(),
                links: Default::default(),
                carrier: CarrierKind::default(),
            };
            let practice = apply_options(draft, o)?;
            store
                .put_practice(&practice)
                .await
                .map_err(|e| e.to_string())?;
            let key = generate_key();
            store
                .set_api_key(&id, &hash_key(&key))
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"practice_id": id, "api_key": key, "settings": practice}))
        }
        "update" => {
            let practice = apply_options(existing(id_arg()?).await?, o)?;
            store
                .put_practice(&practice)
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"practice_id": practice.practice_id, "settings": practice}))
        }
        "rotate-key" => {
            let id = existing(id_arg()?).await?.practice_id;
            let key = generate_key();
            store
                .set_api_key(&id, &hash_key(&key))
                .await
                .map_err(|e| e.to_string())?;
            Ok(serde_json::json!({"practice_id": id, "api_key": key}))
        }
        "requeue-dead-letters" => {
            let [queue_url] =
                messaging_lambda::config::require(["SEND_QUEUE_URL"]).map_err(|e| e.to_string())?;
            let aws = aws().await;
            let queue = messaging_adapters::sqs::SqsSendQueue::new(
                aws_sdk_sqs::Client::new(&aws),
                queue_url,
            );
            let report = messaging_core::app::dead_letters::requeue_parked(
                &store,
                &queue,
                chrono::Utc::now(),
            )
            .await
            .map_err(|e| e.to_string())?;
            serde_json::to_value(report).map_err(|e| e.to_string())
        }
        "add-staff" => {
            let practice_id = existing(id_arg()?).await?.practice_id;
            let input = messaging_core::app::staff::NewStaff {
                user: o.get("user").cloned().ok_or("--user is required")?,
                name: o.get("name").cloned().ok_or("--name is required")?,
                role: o
                    .get("role")
                    .cloned()
                    .ok_or("--role admin|staff is required")?,
                password: read_password()?,
            };
            let account = messaging_core::app::staff::create_staff(
                &store,
                &practice_id,
                &input,
                chrono::Utc::now(),
            )
            .await
            .map_err(|e| e.message)?;
            Ok(serde_json::json!({"practice_id": practice_id, "staff": account}))
        }
        "set-password" => {
            use messaging_core::ports::StaffStore;
            let user = messaging_core::domain::staff::normalize_user(
                o.get("user").ok_or("--user is required")?,
                "--user",
            )
            .map_err(|e| e.message)?;
            let staff = store
                .staff_for_user(&user)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no staff account signs in as {user}"))?;
            let account = messaging_core::app::staff::set_password(
                &store,
                &staff.practice_id,
                &staff.staff_id,
                &read_password()?,
            )
            .await
            .map_err(|e| e.message)?;
            Ok(serde_json::json!({"practice_id": staff.practice_id, "staff": account}))
        }
        "list-staff" => {
            let practice_id = existing(id_arg()?).await?.practice_id;
            let staff = messaging_core::app::staff::list_staff(&store, &practice_id)
                .await
                .map_err(|e| e.message)?;
            Ok(serde_json::json!({"practice_id": practice_id, "staff": staff}))
        }
        "show" => {
            let practice = existing(id_arg()?).await?;
            Ok(serde_json::json!({"practice_id": practice.practice_id, "settings": practice}))
        }
        other => Err(format!("unknown command {other:?}; {USAGE}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let table = match messaging_lambda::config::require(["TABLE_NAME"]) {
        Ok([t]) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let aws = aws().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    match run(args, store).await {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("practice-admin: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The operator's AWS configuration: the SDK's full credential chain
/// (environment, profiles and SSO, instance roles), sending through the
/// project's HTTP client like the functions.
async fn aws() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(messaging_adapters::aws::http_client())
        .load()
        .await
}

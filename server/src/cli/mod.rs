//! The `proctor` command line: `serve` (the default), `admin …`, `replay`, `simulate` and
//! `openapi`. Admin commands open the same store as `serve` (same `--data-dir` and
//! `--database-url`) and work while it runs.

pub mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::startup::{Application, Settings, build_app};

#[derive(Debug, Parser)]
#[command(
    name = "proctor",
    version,
    about = "Anti-fraud proctoring for subsidised online vocational training"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (gateway and worker in one process).
    Serve(ServeArgs),
    /// Operator commands on the store.
    #[command(subcommand)]
    Admin(Admin),
    /// Recompute a session's verdict from its log and report any difference from the stored one.
    Replay {
        #[command(flatten)]
        store: StoreArgs,
        #[arg(long)]
        session: String,
    },
    /// Drive simulated learners (honest and cheating) through a running server's API and
    /// WebSocket, print a verdict table, and exit non-zero if any verdict is not the expected one.
    Simulate(simulate::SimulateArgs),
    /// Print the OpenAPI 3.1 document.
    Openapi,
    /// Apply pending database migrations and exit (a Kubernetes Job runs this before a
    /// rollout; `serve` applies them too, under the migrator's lock).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// The reviewers' audit trail.
    #[command(subcommand)]
    Audit(Audit),
}

#[derive(Debug, Subcommand)]
enum Audit {
    /// Check the whole hash chain; exit 3 and name the first broken link if it does not verify.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args, Clone)]
struct StoreArgs {
    /// Where the embedded database, keys and evidence live.
    #[arg(long, env = "PROCTOR_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…` (default: SQLite under the data directory).
    #[arg(long, env = "PROCTOR_DATABASE_URL")]
    database_url: Option<String>,
}

#[derive(Debug, Args, Clone)]
struct ServeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "PROCTOR_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// The URL clients reach this server at (default: http://<listen>).
    #[arg(long, env = "PROCTOR_PUBLIC_URL")]
    public_url: Option<String>,
    /// Server clock speed relative to real time. 1 in production; demos and simulations use
    /// e.g. 100 so a 45-minute lesson takes 27 seconds. Verdicts made faster than real time
    /// are for demonstration only.
    #[arg(long, env = "PROCTOR_TIME_SCALE", default_value_t = 1.0)]
    time_scale: f64,
    /// Event bus partitions (one worker each).
    #[arg(long, env = "PROCTOR_PARTITIONS", default_value_t = 4)]
    partitions: usize,
    /// Heartbeat interval the SDK is told to use, in server milliseconds.
    #[arg(long, env = "PROCTOR_HEARTBEAT_MS", default_value_t = 5000)]
    heartbeat_ms: i64,
    /// Do not seed the demo platform and course.
    #[arg(long, env = "PROCTOR_NO_DEMO")]
    no_demo: bool,
    /// What this process runs: gateway (REST + WebSocket), worker (partitions), or all.
    #[arg(long, env = "PROCTOR_ROLE", value_enum, default_value = "all")]
    role: crate::startup::Role,
    /// Redis for the Streams bus and shared leases (`redis://host:6379`, or
    /// `redis+cluster://h1:p1,h2:p2`). Without it everything runs in process.
    #[arg(long, env = "PROCTOR_REDIS_URL")]
    redis_url: Option<String>,
    /// Prefix of every Redis key and channel.
    #[arg(long, env = "PROCTOR_REDIS_NAMESPACE", default_value = "proctor")]
    redis_namespace: String,
    /// Backpressure: gateways refuse new events while a partition stream holds this many
    /// entries (1 to 64 events each) no worker has acknowledged (a store outage, no live
    /// worker).
    #[arg(long, env = "PROCTOR_BUS_MAX_BACKLOG", default_value_t = crate::adapters::redis::bus::DEFAULT_MAX_BACKLOG)]
    bus_max_backlog: u64,
    /// Face analysis: `onnx` (the models from `models/setup.sh`) or `stand-in` (labelled,
    /// brightness-driven; for `proctor simulate` and tests with synthetic images).
    #[arg(long, env = "PROCTOR_FACE", default_value = "onnx", value_parser = ["onnx", "stand-in"])]
    face: String,
    /// Folder holding the ONNX face models.
    #[arg(long, env = "PROCTOR_MODELS_DIR", default_value = "models/bin")]
    models_dir: std::path::PathBuf,
    /// The ONNX Runtime shared library.
    #[arg(
        long,
        env = "PROCTOR_ONNXRUNTIME",
        default_value = "models/lib/libonnxruntime.so"
    )]
    onnxruntime: std::path::PathBuf,
    /// The current face-template key, base64 of 32 bytes (default: a key file in the data
    /// directory, created on first start).
    #[arg(long, env = "PROCTOR_TEMPLATE_KEY", hide_env_values = true)]
    template_key: Option<String>,
}

impl Default for ServeArgs {
    fn default() -> Self {
        ServeArgs {
            store: StoreArgs {
                data_dir: "./data".into(),
                database_url: std::env::var("PROCTOR_DATABASE_URL").ok(),
            },
            listen: std::env::var("PROCTOR_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into()),
            public_url: std::env::var("PROCTOR_PUBLIC_URL").ok(),
            time_scale: std::env::var("PROCTOR_TIME_SCALE")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(1.0),
            partitions: 4,
            heartbeat_ms: 5000,
            no_demo: false,
            role: crate::startup::Role::All,
            redis_url: std::env::var("PROCTOR_REDIS_URL").ok(),
            redis_namespace: std::env::var("PROCTOR_REDIS_NAMESPACE")
                .unwrap_or_else(|_| "proctor".into()),
            bus_max_backlog: std::env::var("PROCTOR_BUS_MAX_BACKLOG")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(crate::adapters::redis::bus::DEFAULT_MAX_BACKLOG),
            face: std::env::var("PROCTOR_FACE").unwrap_or_else(|_| "onnx".into()),
            models_dir: std::env::var("PROCTOR_MODELS_DIR")
                .unwrap_or_else(|_| "models/bin".into())
                .into(),
            onnxruntime: std::env::var("PROCTOR_ONNXRUNTIME")
                .unwrap_or_else(|_| "models/lib/libonnxruntime.so".into())
                .into(),
            template_key: std::env::var("PROCTOR_TEMPLATE_KEY").ok(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Register a training platform; prints JSON with its client_id and client_secret.
    CreatePlatform {
        name: String,
        /// Two-digit province code, e.g. 41 (Henan).
        #[arg(long)]
        province: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Approve course content (video sha256 hashes) for a province (R13).
    ApproveContent {
        #[arg(required = true)]
        hashes: Vec<String>,
        #[arg(long)]
        province: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a platform's standing with the supervision system (R14).
    SetStanding {
        platform_id: String,
        /// The platform is not registered with the supervision system.
        #[arg(long)]
        unregistered: bool,
        /// The platform is banned from now on.
        #[arg(long)]
        banned: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create a reviewer account for the workbench at /review; prints JSON (with a generated
    /// password unless --password-stdin, and the TOTP secret with --totp).
    CreateReviewer {
        name: String,
        /// Two-digit province code the account is scoped to, e.g. 41.
        #[arg(long)]
        province: String,
        /// Limit the account to one city (four digits, e.g. 4101) or county (six digits, e.g.
        /// 410102) of the province; it then sees only classes registered with that region.
        #[arg(long)]
        region: Option<String>,
        #[arg(long, value_enum)]
        role: crate::app::review::Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Require a TOTP code (RFC 6238) at sign-in; the secret is printed once.
        #[arg(long)]
        totp: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

fn settings(store: &StoreArgs) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: store.data_dir.clone(),
        database_url: store.database_url.clone(),
        public_url: None,
        time_scale: 1.0,
        partitions: 1,
        heartbeat_interval_ms: 5000,
        demo: false,
        role: crate::startup::Role::All,
        redis_url: None,
        redis_namespace: "proctor".into(),
        bus_max_backlog: crate::adapters::redis::bus::DEFAULT_MAX_BACKLOG,
        // Admin and replay never analyse faces.
        face: crate::startup::FaceBackend::StandIn,
        template_key: std::env::var("PROCTOR_TEMPLATE_KEY").ok(),
    }
}

/// Entry point of the `proctor` binary.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PROCTOR_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sqlx=warn,actix_server=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: failed to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli
        .command
        .unwrap_or(Command::Serve(ServeArgs::default()))))
    {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => serve(args).await.map(|()| ExitCode::SUCCESS),
        Command::Admin(admin) => admin_command(admin).await.map(|()| ExitCode::SUCCESS),
        Command::Replay { store, session } => {
            let (bus, _rx) = crate::adapters::bus::MemoryBus::new(1, 1);
            let app = build_app(
                &settings(&store),
                crate::adapters::bus::Bus::Memory(bus),
                None,
                String::new(),
            )
            .await?;
            let report = app
                .replay(&session)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "session_id": report.session_id, "events": report.events,
                    "stored_present": report.stored_present, "matches": report.matches,
                    "credited_ms": report.replayed.credited_ms,
                }))?
            );
            Ok(if report.matches {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Simulate(args) => simulate::run(args).await,
        Command::Migrate { store } => {
            let store = crate::startup::open_store(&settings(&store)).await?;
            store.close().await;
            println!("Migrations applied.");
            Ok(ExitCode::SUCCESS)
        }
        Command::Audit(Audit::Verify { store }) => {
            let (bus, _rx) = crate::adapters::bus::MemoryBus::new(1, 1);
            let app = build_app(
                &settings(&store),
                crate::adapters::bus::Bus::Memory(bus),
                None,
                String::new(),
            )
            .await?;
            let v = app
                .verify_audit()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            app.store.close().await;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(if v.first_broken.is_none() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(3)
            })
        }
        Command::Openapi => {
            print!("{}", crate::api::openapi_json());
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let s = Settings {
        listen: args.listen,
        data_dir: args.store.data_dir.clone(),
        database_url: args.store.database_url.clone(),
        public_url: args.public_url,
        time_scale: args.time_scale,
        partitions: args.partitions.clamp(1, 256),
        heartbeat_interval_ms: args.heartbeat_ms.clamp(1000, 60_000),
        demo: !args.no_demo && args.role.gateway(),
        role: args.role,
        redis_url: args.redis_url.clone(),
        redis_namespace: args.redis_namespace.clone(),
        bus_max_backlog: args.bus_max_backlog.max(1),
        face: if args.face == "stand-in" {
            crate::startup::FaceBackend::StandIn
        } else {
            crate::startup::FaceBackend::Onnx {
                models_dir: args.models_dir,
                runtime: args.onnxruntime,
            }
        },
        template_key: args.template_key,
    };
    let application = Application::build(s.clone()).await?;
    let url = application.base_url().to_owned();
    let demo = if s.demo {
        Some(application.app().seed_demo(&s.data_dir).await?)
    } else {
        None
    };
    println!("proctor is serving at {url}");
    println!("  API          {url}/api/v1");
    println!("  API docs     {url}/api/v1/docs/   (OpenAPI: {url}/api/v1/openapi.json)");
    println!("  Health       {url}/healthz  {url}/readyz");
    let face = application.app().face.clone();
    println!(
        "  Face checks  {} ({})",
        face.name(),
        match face.state() {
            Ok(()) => "ok".to_owned(),
            Err(why) => format!("unavailable: {why}"),
        }
    );
    println!(
        "  Store        {}",
        if s.database_url.is_some() {
            "PostgreSQL/SQLite (PROCTOR_DATABASE_URL)".to_owned()
        } else {
            format!("SQLite in {}", s.data_dir.display())
        }
    );
    println!(
        "  Credentials  proctor admin create-platform NAME --province 41 --data-dir {}",
        s.data_dir.display()
    );
    if demo.is_some() {
        println!("  Demo lesson  {url}/demo   (build its files once: scripts/build-demo)");
        println!(
            "  Demo         platform credentials in {}",
            s.data_dir.join("demo-credentials.json").display()
        );
        println!(
            "               try: proctor simulate --server {url} --credentials {}",
            s.data_dir.join("demo-credentials.json").display()
        );
    }
    if (s.time_scale - 1.0).abs() > f64::EPSILON {
        println!(
            "  WARNING      the server clock runs at {}× real time: verdicts are for demonstration only",
            s.time_scale
        );
    }
    application.run_until_stopped().await
}

async fn admin_command(admin: Admin) -> anyhow::Result<()> {
    let store = match &admin {
        Admin::CreatePlatform { store, .. }
        | Admin::ApproveContent { store, .. }
        | Admin::SetStanding { store, .. }
        | Admin::CreateReviewer { store, .. } => store.clone(),
    };
    let (bus, _rx) = crate::adapters::bus::MemoryBus::new(1, 1);
    let app = build_app(
        &settings(&store),
        crate::adapters::bus::Bus::Memory(bus),
        None,
        "http://127.0.0.1:8080".into(),
    )
    .await?;
    match admin {
        Admin::CreatePlatform { name, province, .. } => {
            let creds = app
                .create_platform(&name, &province)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string_pretty(&creds)?);
        }
        Admin::ApproveContent {
            hashes, province, ..
        } => {
            for h in &hashes {
                let h = h.to_ascii_lowercase();
                anyhow::ensure!(
                    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{h} is not a sha256 hex digest"
                );
                app.store
                    .approve_content(&province, &h, app.now())
                    .await
                    .context("Failed to approve content")?;
            }
            println!(
                "{}",
                serde_json::json!({"approved": hashes.len(), "province": province})
            );
        }
        Admin::SetStanding {
            platform_id,
            unregistered,
            banned,
            ..
        } => {
            let since = banned.then(|| app.now());
            let found = app
                .store
                .set_platform_standing(&platform_id, !unregistered, since)
                .await?;
            anyhow::ensure!(found, "no platform {platform_id}");
            println!(
                "{}",
                serde_json::json!({"platform_id": platform_id, "registered": !unregistered, "banned_since": since})
            );
        }
        Admin::CreateReviewer {
            name,
            province,
            region,
            role,
            password_stdin,
            totp,
            ..
        } => {
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("Failed to read the password from standard input")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                use rand::RngCore;
                let mut b = [0u8; 12];
                rand::rng().fill_bytes(&mut b);
                (hex::encode(b), true)
            };
            let created = app
                .create_reviewer_in(&name, &province, region.as_deref(), role, &password, totp)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut out = serde_json::to_value(&created)?;
            if generated {
                out["password"] = serde_json::Value::String(password);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    app.store.close().await;
    Ok(())
}

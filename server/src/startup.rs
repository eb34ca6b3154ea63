//! Building and running the service: settings → store, keys, bus, workers, HTTP server.
//! Graceful shutdown (SIGTERM/SIGINT): readiness fails first, sockets are told to reconnect
//! elsewhere (1012), the HTTP server stops accepting and finishes in-flight requests, then
//! the workers drain every event already accepted onto the bus and persist it. Nothing that
//! was acknowledged to a client is lost.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use actix_service::IntoServiceFactory as _;
use actix_web::web;
use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::adapters::bus::{Bus, MemoryBus};
use crate::adapters::clock::SystemClock;
use crate::adapters::evidence::FsEvidence;
use crate::adapters::face::StandInFace;
use crate::adapters::redis::bus::RedisBus;
use crate::adapters::redis::partition::{RedisPartition, Share};
use crate::adapters::redis::{RedisConn, RedisTarget};
use crate::adapters::store::Store;
use crate::app::App;
use crate::app::hub::{Hub, Leases};
use crate::auth::Keys;
use crate::pipeline::worker::{Source, Worker};

/// Everything `proctor serve` can be told.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on; port 0 picks a free port (tests).
    pub listen: String,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; defaults to SQLite under `data_dir`.
    pub database_url: Option<String>,
    /// The URL clients use to reach this server; defaults to `http://<listen address>`.
    pub public_url: Option<String>,
    /// Server clock speed relative to real time: 1 in production; demos and tests go faster.
    pub time_scale: f64,
    pub partitions: usize,
    pub heartbeat_interval_ms: i64,
    /// Seed a demo platform and course on first start (embedded default).
    pub demo: bool,
    /// Which parts of the pipeline this process runs.
    pub role: Role,
    /// `redis://…` or `redis+cluster://h1:p1,h2:p2`: the Redis Streams bus and shared leases.
    /// `None` runs everything in process (then the role must be `all`).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel, so deployments (or tests) can share a Redis.
    pub redis_namespace: String,
    /// Gateways refuse new events (backpressure) while a partition stream holds this many
    /// entries the workers have not acknowledged (Redis bus only).
    pub bus_max_backlog: u64,
    /// Which face analysis answers face checks and snapshots.
    pub face: FaceBackend,
    /// The current face-template key (base64, 32 bytes); else key files under `data_dir/keys`.
    pub template_key: Option<String>,
}

/// What a `proctor serve` process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// REST, WebSocket and workers in one process (the embedded default).
    All,
    /// REST and WebSocket: authenticates, stamps and publishes events; pushes effects.
    Gateway,
    /// Consumes partitions, folds, persists verdicts, runs timers, emits effects.
    Worker,
}

impl Role {
    pub fn gateway(self) -> bool {
        matches!(self, Role::All | Role::Gateway)
    }
    pub fn worker(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }
}

/// The face analysis behind the `FaceCheck` port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaceBackend {
    /// The ONNX models from `models_dir` on the ONNX Runtime library `runtime`. If they cannot
    /// load, the service still starts and reports face checks unavailable.
    Onnx {
        models_dir: PathBuf,
        runtime: PathBuf,
    },
    /// The labelled stand-in, for tests and `proctor simulate` with synthetic images.
    StandIn,
}

impl FaceBackend {
    /// The ONNX backend with `models/setup.sh`'s layout under `root`.
    pub fn onnx_under(root: &std::path::Path) -> FaceBackend {
        let (models_dir, runtime) = crate::adapters::face::onnx::default_paths(root);
        FaceBackend::Onnx {
            models_dir,
            runtime,
        }
    }

    fn build(&self) -> Arc<dyn crate::ports::FaceCheck> {
        match self {
            FaceBackend::Onnx {
                models_dir,
                runtime,
            } => Arc::new(crate::adapters::face::OnnxFace::load(models_dir, runtime)),
            FaceBackend::StandIn => Arc::new(StandInFace),
        }
    }
}

impl Settings {
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("proctor.db").display()
            )
        })
    }
}

/// A built, not yet running, service.
#[derive(Debug)]
pub struct Application {
    port: u16,
    base_url: String,
    app: Arc<App>,
    listener: TcpListener,
    sources: Vec<Source>,
    role: Role,
    redis: Option<(RedisTarget, String, Arc<Share>)>,
    demo: crate::api::routes::demo::DemoSite,
}

/// Opens the store the way every command does (`serve` and `admin` share it).
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!(
            "Failed to create the data directory {}",
            settings.data_dir.display()
        )
    })?;
    Store::connect(&settings.database_url())
        .await
        .context("Failed to open the database")
}

/// Builds the shared application state (also used by admin commands, with no server).
pub async fn build_app(
    settings: &Settings,
    bus: Bus,
    redis: Option<RedisConn>,
    public_url: String,
) -> anyhow::Result<App> {
    let store = open_store(settings).await?;
    let keys = Keys::load_or_create(&settings.data_dir.join("keys"))?;
    let evidence = FsEvidence::new(settings.data_dir.join("evidence"))
        .context("Failed to create the evidence directory")?;
    Ok(App {
        store,
        bus,
        redis,
        hub: Arc::new(Hub::default()),
        leases: Leases::default(),
        keys,
        clock: Arc::new(SystemClock::new(settings.time_scale)),
        face: settings.face.build(),
        evidence: Arc::new(evidence),
        templates: crate::adapters::face::template::TemplateKeys::load(
            &settings.data_dir,
            settings.template_key.as_deref(),
        )
        .context("Failed to load the face-template keys")?,
        face_slots: Arc::new(tokio::sync::Semaphore::new(
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        )),
        public_url,
        heartbeat_interval_ms: settings.heartbeat_interval_ms,
        draining: false.into(),
        demo_platform: std::sync::OnceLock::new(),
    })
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let listener = TcpListener::bind(&settings.listen)
            .with_context(|| format!("Failed to bind {}", settings.listen))?;
        let addr = listener
            .local_addr()
            .context("Failed to read the bound address")?;
        let base_url = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let partitions = settings.partitions.max(1);
        let (bus, sources, redis, conn) = match &settings.redis_url {
            None => {
                anyhow::ensure!(
                    settings.role == Role::All,
                    "--role gateway and --role worker need a shared bus: set PROCTOR_REDIS_URL"
                );
                let (bus, receivers) = MemoryBus::new(partitions, 4096);
                (
                    Bus::Memory(bus),
                    receivers.into_iter().map(Source::Memory).collect(),
                    None,
                    None,
                )
            }
            Some(url) => {
                let target = RedisTarget::parse(url);
                let conn = RedisConn::connect(&target, &settings.redis_namespace)
                    .await
                    .context("Failed to connect to Redis")?;
                let bus = RedisBus::new(conn.clone(), partitions, settings.bus_max_backlog)
                    .await
                    .context("Failed to prepare the Redis streams")?;
                let consumer = format!("worker-{}", uuid::Uuid::new_v4().simple());
                let share = Arc::new(Share::default());
                share
                    .fair
                    .store(partitions, std::sync::atomic::Ordering::SeqCst);
                // Each partition reader blocks in XREADGROUP, so it gets a connection of its own:
                // on the shared multiplexed one, every gateway write would queue behind it.
                let mut sources = Vec::with_capacity(partitions);
                for p in 0..partitions {
                    let own = RedisConn::connect(&target, &settings.redis_namespace)
                        .await
                        .context("Failed to connect to Redis")?;
                    sources.push(Source::Redis(RedisPartition::new(
                        own,
                        p,
                        consumer.clone(),
                        share.clone(),
                    )));
                }
                (
                    Bus::Redis(bus),
                    sources,
                    Some((target, consumer, share)),
                    Some(conn),
                )
            }
        };
        let app = Arc::new(build_app(&settings, bus, conn, base_url.clone()).await?);
        Ok(Application {
            port: addr.port(),
            base_url,
            app,
            listener,
            sources,
            role: settings.role,
            redis,
            demo: crate::api::routes::demo::DemoSite::new(&settings.data_dir),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn app(&self) -> Arc<App> {
        self.app.clone()
    }

    /// Serves until SIGTERM/SIGINT or until `stop` resolves, then shuts down gracefully.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Application {
            app,
            listener,
            sources,
            role,
            redis,
            demo,
            ..
        } = self;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let partitions = sources.len();
        crate::metrics::metrics().set_build_info(match role {
            Role::All => "all",
            Role::Gateway => "gateway",
            Role::Worker => "worker",
        });
        let count = i64::try_from(partitions).unwrap_or(i64::MAX);
        crate::metrics::metrics().bus_partitions.set(count);
        if redis.is_none() && role.worker() {
            // In process every partition has its worker here (Redis: sampled by ownership).
            crate::metrics::metrics().partitions_owned.set(count);
        }
        let mut workers: Vec<JoinHandle<()>> = Vec::new();
        if role.worker() {
            workers.extend(sources.into_iter().enumerate().map(|(i, source)| {
                tokio::spawn(
                    Worker::new(app.clone(), i, partitions).run(source, shutdown_rx.clone()),
                )
            }));
        }
        if role.worker() {
            // Evidence retention (R15): hourly; idempotent, so every worker process may run it.
            tokio::spawn(crate::app::review::retention::run_job(
                app.clone(),
                Duration::from_secs(3600),
                shutdown_rx.clone(),
            ));
        }
        if let Some((target, consumer, share)) = &redis {
            if role.gateway() {
                tokio::spawn(crate::adapters::redis::effects::deliver(
                    target.clone(),
                    conn_channel(&app),
                    app.hub.clone(),
                ));
            }
            if role.worker() {
                tokio::spawn(crate::metrics::bus::sample_redis(
                    app.clone(),
                    share.clone(),
                    partitions,
                    shutdown_rx.clone(),
                ));
                tokio::spawn(membership(
                    app.clone(),
                    consumer.clone(),
                    share.clone(),
                    partitions,
                    shutdown_rx.clone(),
                ));
            }
        }

        let data = web::Data::from(app.clone());
        let openapi = crate::api::openapi();
        let idempotency = web::Data::new(crate::api::idempotency::Memory::default());
        // The application, built once per HTTP worker and shared by its two services: requests,
        // and WebSocket upgrades (the learner sockets, `api::upgrade`), which go through the
        // same application before the socket leaves actix-http's dispatcher.
        let make_app = move || {
            // The docs come first: the /api/v1 scope would otherwise answer 404 for them.
            let docs =
                SwaggerUi::new("/api/v1/docs/{_:.*}").url("/api/v1/openapi.json", openapi.clone());
            let (router, _) = actix_web::App::new()
                .into_utoipa_app()
                .app_data(data.clone())
                .app_data(crate::api::json_config())
                .app_data(web::QueryConfig::default().error_handler(crate::api::error::query_error))
                .app_data(web::PathConfig::default().error_handler(crate::api::error::path_error))
                .map(|app| {
                    app.service(docs)
                        .service(web::redirect("/api/v1/docs", "/api/v1/docs/"))
                })
                .configure(move |cfg| {
                    if role.gateway() {
                        crate::api::configure(cfg);
                    } else {
                        crate::api::configure_health(cfg);
                    }
                })
                .split_for_parts();
            router
                .configure(|c| crate::api::routes::demo::configure(c, demo.clone()))
                .configure(|c| {
                    if role.gateway() {
                        crate::api::routes::review::configure(c);
                    }
                })
                .app_data(idempotency.clone())
                .wrap(actix_web::middleware::from_fn(
                    crate::api::idempotency::guard,
                ))
                .default_service(web::to(crate::api::not_found))
                .wrap(actix_web::middleware::from_fn(
                    crate::metrics::http::observe,
                ))
                .into_factory()
        };
        let addr = listener
            .local_addr()
            .context("Failed to read the bound address")?;
        let builder = actix_server::Server::build();
        // Tells idle keep-alive connections to close when a graceful stop begins (as
        // actix-web's `HttpServer` does), so the stop does not wait out their timeout.
        let stopping = builder.graceful_shutdown_signal();
        let server = builder
            .workers(2)
            .disable_signals()
            .shutdown_timeout(10)
            .listen("proctor-http", listener, move || {
                let stopping = stopping.clone();
                let (requests, upgrades) = crate::api::upgrade::services(make_app.clone());
                actix_http::HttpService::build()
                    // As actix-web's `HttpServer`: a connection closed after an early answer
                    // (413 to an oversized upload) lingers 1 s for the rest of the request, so
                    // the client reads the answer instead of a reset while it still writes.
                    .client_disconnect_timeout(Duration::from_secs(1))
                    // A connection outlives any idle upstream connection a proxy keeps
                    // (ingress-nginx: 60 s), opened ahead of use or kept after a request.
                    // actix's 5 s let the gateway end one that a client or proxy was about
                    // to use: after a request it closed it (the proxy's next request
                    // failed); before the first it answered 408 unasked, which an HTTP
                    // client reusing the connection read as the answer to its request.
                    .keep_alive(IDLE_CONNECTION)
                    .client_request_timeout(IDLE_CONNECTION)
                    .graceful_shutdown_signal(move || {
                        let stopping = stopping.clone();
                        async move { stopping.notified().await }
                    })
                    .local_addr(addr)
                    .upgrade(upgrades)
                    .finish(requests)
                    .tcp()
            })
            .context("Failed to start the HTTP server")?
            .run();
        let handle = server.handle();
        let server_task = tokio::spawn(server);

        tokio::select! {
            () = stop => tracing::info!("Stop requested; shutting down gracefully."),
            () = termination() => tracing::info!("Signal received; shutting down gracefully."),
        }
        app.draining.store(true, Ordering::SeqCst);
        app.hub
            .close_all(1012, "server restarting; reconnect and resend");
        handle.stop(true).await;
        let _ = server_task.await;
        // Sockets finish the message they are handling (publish included) before closing.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while app.hub.connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = shutdown_tx.send(true);
        for w in workers {
            let _ = w.await;
        }
        app.store.close().await;
        tracing::info!("Shut down cleanly: every accepted event is stored.");
        Ok(())
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(std::future::pending()).await
    }
}

/// How long an HTTP connection may sit idle, before its first request or after its last:
/// longer than a proxy keeps an idle upstream connection (ingress-nginx 60 s), as nginx's
/// own 75 s keep-alive is.
const IDLE_CONNECTION: Duration = Duration::from_secs(75);

/// Keeps this worker process in the live set and computes its fair share of partitions, so
/// that adding a worker process moves partitions to it and a dead one's are taken over.
/// A member that missed `MEMBER_WINDOW_MS` of its 1 s beats counts as gone. Counting a live
/// worker as gone only lets the others try for more partitions; they get one only when its
/// lease (`OWNER_TTL`) lapses.
const MEMBER_WINDOW_MS: u64 = 2500;

async fn membership(
    app: Arc<App>,
    consumer: String,
    share: Arc<Share>,
    partitions: usize,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(mut conn) = app.redis.clone() else {
        return;
    };
    let key = format!("{}:{{workers}}:live", conn.ns());
    let key = key.as_str();
    loop {
        let now = crate::auth::unix_now_ms();
        let live: redis::RedisResult<usize> = async {
            conn.query::<i64>(redis::cmd("ZADD").arg(key).arg(now).arg(&consumer))
                .await?;
            conn.query::<i64>(
                redis::cmd("ZREMRANGEBYSCORE")
                    .arg(key)
                    .arg("-inf")
                    .arg(now.saturating_sub(MEMBER_WINDOW_MS)),
            )
            .await?;
            conn.query::<usize>(redis::cmd("ZCARD").arg(key)).await
        }
        .await;
        match live {
            Ok(n) => share.fair.store(
                partitions.div_ceil(n.max(1)),
                std::sync::atomic::Ordering::SeqCst,
            ),
            Err(e) => tracing::warn!(error = %e, "Failed to refresh worker membership."),
        }
        tokio::select! {
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    let _: redis::RedisResult<i64> = conn.query(redis::cmd("ZREM").arg(key).arg(&consumer)).await;
}

async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn conn_channel(app: &App) -> String {
    app.redis
        .as_ref()
        .map(RedisConn::effects_channel)
        .unwrap_or_default()
}

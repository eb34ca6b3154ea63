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

use actix_web::{HttpServer, web};
use anyhow::Context;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::adapters::bus::MemoryBus;
use crate::adapters::clock::SystemClock;
use crate::adapters::evidence::FsEvidence;
use crate::adapters::face::StandInFace;
use crate::adapters::store::Store;
use crate::app::App;
use crate::app::hub::{Hub, Leases};
use crate::auth::Keys;
use crate::pipeline::worker::Worker;

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
    /// Which face analysis answers face checks and snapshots.
    pub face: FaceBackend,
    /// The current face-template key (base64, 32 bytes); else key files under `data_dir/keys`.
    pub template_key: Option<String>,
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
    receivers: Vec<tokio::sync::mpsc::Receiver<crate::adapters::bus::Delivery>>,
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
    bus: MemoryBus,
    public_url: String,
) -> anyhow::Result<App> {
    let store = open_store(settings).await?;
    let keys = Keys::load_or_create(&settings.data_dir.join("keys"))?;
    let evidence = FsEvidence::new(settings.data_dir.join("evidence"))
        .context("Failed to create the evidence directory")?;
    Ok(App {
        store,
        bus,
        hub: Hub::default(),
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
        let (bus, receivers) = MemoryBus::new(settings.partitions, 4096);
        let app = Arc::new(build_app(&settings, bus, base_url.clone()).await?);
        Ok(Application {
            port: addr.port(),
            base_url,
            app,
            listener,
            receivers,
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
            receivers,
            ..
        } = self;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let partitions = receivers.len();
        let workers: Vec<JoinHandle<()>> = receivers
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                tokio::spawn(Worker::new(app.clone(), i, partitions, rx).run(shutdown_rx.clone()))
            })
            .collect();

        let data = web::Data::from(app.clone());
        let openapi = crate::api::openapi();
        let server = HttpServer::new(move || {
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
                .configure(crate::api::configure)
                .split_for_parts();
            router.default_service(web::to(crate::api::not_found))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(10)
        .listen(listener)
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

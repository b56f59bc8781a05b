//! `gandissect serve`: the painting page. A person picks a scene, a concept and a brush, and
//! paints: every stroke switches the concept's units off (erase) or on (draw) in the painted
//! region, the scene is drawn again, and the context check's verdict comes back beside it.
//!
//! This module is the HTTP layer only (axum on tokio): [`routes`] and their [`request`] types
//! and limits, the page's [`assets`] embedded in the binary, and per project a painter thread
//! ([`worker`]) that owns the project's [`edit::Session`](crate::edit::Session) and a cache of
//! open scenes' cut-layer features. The painting itself is [`edit`](crate::edit)'s.

pub mod assets;
pub mod error;
pub mod export;
pub mod mask;
pub mod project;
pub mod request;
pub mod routes;
pub mod worker;

pub use error::ApiError;
pub use project::{ProjectInfo, ProjectSource};
pub use request::{PaintRequest, StrokeRequest};

use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use routes::AppState;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tch::Device;
use worker::{Worker, WorkerLimits};

/// The default address: this machine only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Everything a server needs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// What is served.
    pub projects: ProjectSource,
    /// Where it listens (port 0: any free port).
    pub addr: SocketAddr,
    /// Quantile of each unit's activation that drawing sets it to.
    pub value_quantile: f64,
    /// Seed of the latent stream image ids index.
    pub stream: u32,
    /// Where tensors live.
    pub device: Device,
    /// Strokes a request may hold.
    pub max_strokes: usize,
    /// The painters' limits (open scenes, queue, ids).
    pub limits: WorkerLimits,
    /// Longest time a request may take, reading included.
    pub timeout: Duration,
}

impl ServeOptions {
    /// Serves `projects` on [`DEFAULT_ADDR`] with the defaults.
    pub fn new(projects: ProjectSource) -> Self {
        Self {
            projects,
            addr: DEFAULT_ADDR.parse().expect("a valid address"),
            value_quantile: crate::edit::plan::DEFAULT_VALUE_QUANTILE,
            stream: crate::zsample::DEFAULT_STREAM_SEED,
            device: Device::Cpu,
            max_strokes: request::DEFAULT_MAX_STROKES,
            limits: WorkerLimits::default(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// A running server; stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    projects: Vec<Arc<ProjectInfo>>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
    painters: Vec<JoinHandle<()>>,
}

impl Server {
    /// Loads the projects (dissecting where needed, said on stderr), starts their painters and
    /// listens on `opts.addr`.
    pub fn start(opts: &ServeOptions) -> Result<Self> {
        let specs = project::find_projects(&opts.projects)?;
        let mut projects = Vec::new();
        let mut workers = HashMap::new();
        let mut painters = Vec::new();
        for spec in &specs {
            eprintln!("loading project {} ({})", spec.name, spec.model);
            let (info, models) =
                project::load_project(spec, opts.value_quantile, opts.stream, opts.device)?;
            let info = Arc::new(info);
            let (w, thread) = Worker::spawn(Arc::clone(&info), models, opts.limits.clone());
            workers.insert(info.project.clone(), w);
            painters.push(thread);
            projects.push(info);
        }
        let side = projects.iter().map(|p| p.image_size).max().unwrap_or(1);
        let state = Arc::new(AppState {
            projects: projects.clone(),
            workers,
            max_strokes: opts.max_strokes,
            body_limit: request::body_limit(opts.max_strokes, side),
        });
        let listener = std::net::TcpListener::bind(opts.addr)
            .with_context(|| format!("cannot listen on {}", opts.addr))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let app = routes::router(state, opts.timeout);
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("serve-http")
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("serve".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        eprintln!("error: the listening socket cannot be used");
                        return;
                    };
                    // answers go out at once, not after the client's delayed acknowledgement
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let mut graceful = stopped.clone();
                    let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                        let _ = graceful.wait_for(|s| *s).await;
                    });
                    // connections still open two seconds after the stop are dropped
                    let deadline = async move {
                        let _ = stopped.wait_for(|s| *s).await;
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    };
                    tokio::select! {
                        r = serve => if let Err(e) = r { eprintln!("error: {e}") },
                        _ = deadline => {}
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Self {
            addr,
            projects,
            stop: Some(stop),
            thread: Some(thread),
            painters,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The projects served.
    pub fn projects(&self) -> &[Arc<ProjectInfo>] {
        &self.projects
    }

    /// Stops listening, lets open requests end (for at most two seconds) and stops the
    /// painters.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        // the router held the last senders of the painters' queues: they end now
        for t in self.painters.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Whether `addr` can only be reached from this machine.
pub fn is_local(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}

/// Runs a server until Ctrl-C: prints its address, warns on stderr when it listens beyond this
/// machine, and with `open` asks the desktop to open the page.
pub fn run(opts: &ServeOptions, open: bool) -> Result<()> {
    if !is_local(&opts.addr) {
        eprintln!(
            "warning: listening on {}, which other machines can reach; anyone who can reach \
             it can use this server (use 127.0.0.1 to keep it local)",
            opts.addr
        );
    }
    let server = Server::start(opts)?;
    let names: Vec<&str> = server
        .projects()
        .iter()
        .map(|p| p.project.as_str())
        .collect();
    println!(
        "painting page: {} ({}; Ctrl-C stops)",
        server.url(),
        names.join(", ")
    );
    if open {
        open_page(&server.url());
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(tokio::signal::ctrl_c())
        .context("cannot wait for Ctrl-C")?;
    eprintln!("stopping");
    server.stop();
    Ok(())
}

fn open_page(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    match std::process::Command::new(opener)
        .arg(url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => {}
        Err(e) => eprintln!("cannot open the page with {opener} ({e}); open {url} yourself"),
    }
}

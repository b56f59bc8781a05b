//! The HTTP routes: the page, the projects, scenes, painting, downloads and unit pictures.
//!
//! | route | answer |
//! |---|---|
//! | `GET /` (`/app.js`, `/app.css`) | the page, embedded in the binary |
//! | `GET /api/projects` | every project: model, segmenter, image size, layers (natural order) with their concept palette and units, the segmenter's labels |
//! | `GET /api/scene.png?project=P&seed=N` | the original scene as PNG |
//! | `POST /api/paint` | a [`PaintRequest`](super::request::PaintRequest) → the image and its segmentation (PNG data URLs) and every stroke's plan, effect and verdict |
//! | `POST /api/export` | the same request → a zip that replays with `gandissect batch` |
//! | `GET /api/unit.png?project=P&layer=L&unit=U` | a unit's top images from the dissection |
//!
//! Errors are `{"error": "one line"}` with a 4xx status for bad requests.

use super::assets;
use super::error::ApiError;
use super::project::ProjectInfo;
use super::request::parse_paint;
use super::worker::{Job, Painted, Worker};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// What every request sees.
pub struct AppState {
    /// Projects in order.
    pub projects: Vec<Arc<ProjectInfo>>,
    /// Their painters, by name.
    pub workers: HashMap<String, Worker>,
    /// Strokes a request may hold.
    pub max_strokes: usize,
    /// The largest body taken.
    pub body_limit: usize,
}

type Shared = State<Arc<AppState>>;

/// The router over `state`, with its body limit and request timeout.
pub fn router(state: Arc<AppState>, timeout: Duration) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/app.css", get(assets::style))
        .route("/api/projects", get(projects))
        .route("/api/scene.png", get(scene_png))
        .route("/api/unit.png", get(unit_png))
        .route("/api/paint", post(paint))
        .route("/api/export", post(export))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such page; the painting page is at /")
}

async fn projects(State(s): Shared) -> Result<Json<serde_json::Value>, ApiError> {
    let list: Vec<&ProjectInfo> = s.projects.iter().map(|p| p.as_ref()).collect();
    serde_json::to_value(list)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("cannot list the projects: {e}")))
}

impl AppState {
    fn worker(&self, project: &str) -> Result<&Worker, ApiError> {
        self.workers.get(project).ok_or_else(|| {
            ApiError::not_found(format!(
                "unknown project '{project}'; this server has: {}",
                self.projects
                    .iter()
                    .map(|p| p.project.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    fn project(&self, project: &str) -> Result<&ProjectInfo, ApiError> {
        self.worker(project)?;
        Ok(self
            .projects
            .iter()
            .find(|p| p.project == project)
            .expect("every worker has its project"))
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request(format!("bad query: {}", e.body_text())))
}

fn body(b: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request is larger than {limit} bytes; send fewer strokes"),
            )
        } else {
            ApiError::bad_request(format!("cannot read the request body: {}", e.body_text()))
        }
    })
}

fn png(bytes: &[u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/png"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        bytes.to_vec(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct SceneQuery {
    project: String,
    seed: u64,
}

async fn scene_png(
    State(s): Shared,
    q: Result<Query<SceneQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let pngs = s
        .worker(&q.project)?
        .ask(|reply| Job::Scene {
            layer: None,
            seed: q.seed,
            reply,
        })
        .await?;
    Ok(png(&pngs.image))
}

#[derive(Deserialize)]
struct UnitQuery {
    project: String,
    layer: String,
    unit: usize,
}

async fn unit_png(
    State(s): Shared,
    q: Result<Query<UnitQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let p = s.project(&q.project)?;
    let layer = p.layer(&q.layer).ok_or_else(|| {
        ApiError::not_found(format!(
            "unknown layer '{}' of project {}",
            q.layer, p.project
        ))
    })?;
    if q.unit >= layer.channels {
        return Err(ApiError::unprocessable(format!(
            "unit {} is out of range: {} has {} units (0..{})",
            q.unit,
            layer.layer,
            layer.channels,
            layer.channels - 1
        )));
    }
    let path = layer.unit_picture(q.unit).ok_or_else(|| {
        ApiError::not_found(format!(
            "the dissection of {} has no picture of unit {}",
            layer.layer, q.unit
        ))
    })?;
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| ApiError::internal(format!("cannot read a unit picture: {e}")))?;
    Ok(png(&bytes))
}

fn data_url(png: &[u8]) -> String {
    format!("data:image/png;base64,{}", STANDARD.encode(png))
}

/// The JSON answer to a paint request.
pub fn painted_json(project: &str, seed: u64, p: &Painted) -> serde_json::Value {
    json!({
        "project": project,
        "layer": p.layer,
        "seed": seed,
        "image": data_url(&p.pngs.image),
        "segmentation": data_url(&p.pngs.segmentation),
        "changed": p.changed,
        "strokes": p.strokes,
    })
}

async fn paint(
    State(s): Shared,
    b: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req = parse_paint(&body(b, s.body_limit)?, s.max_strokes)?;
    let (project, seed) = (req.project.clone(), req.seed);
    let painted = s
        .worker(&project)?
        .ask(|reply| Job::Paint { req, reply })
        .await?;
    Ok(Json(painted_json(&project, seed, &painted)))
}

async fn export(State(s): Shared, b: Result<Bytes, BytesRejection>) -> Result<Response, ApiError> {
    let req = parse_paint(&body(b, s.body_limit)?, s.max_strokes)?;
    let name = super::export::zip_name(&req.project, req.seed);
    let zip = s
        .worker(&req.project)?
        .ask(|reply| Job::Export { req, reply })
        .await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        zip,
    )
        .into_response())
}

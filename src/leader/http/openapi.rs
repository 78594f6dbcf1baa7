//! The OpenAPI document of the API, generated from the handlers and the documents they answer
//! with, and served at `/api/openapi.json`. A test checks the live server's answers against
//! it, so the document cannot drift from the code.

use super::{assets, dead_letters, events, health, jobs, profiles, schedules, stats, topics};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "offloader leader API",
        description = "Jobs, assets, topology and topics of an offloader leader. Changes (any method but GET) \
and downloads of asset bytes need `Authorization: Bearer <token>` when the leader has a token. Every error \
answer is `{\"error\": \"...\"}`."
    ),
    paths(
        jobs::create_job,
        jobs::list_jobs,
        jobs::get_job,
        jobs::stop_job,
        jobs::retry_job,
        jobs::retry_jobs,
        jobs::remove_jobs,
        jobs::count_jobs,
        jobs::remove_job,
        stats::stats,
        stats::series,
        schedules::list_schedules,
        schedules::add_schedule,
        schedules::remove_schedule,
        events::events,
        assets::put_asset,
        assets::register_asset,
        assets::get_asset,
        assets::list_assets,
        assets::get_blob,
        assets::reprocess_asset,
        assets::launchers,
        assets::models,
        profiles::list_profiles,
        profiles::get_profile,
        profiles::put_profile,
        profiles::remove_profile,
        profiles::folder_profile,
        profiles::apply_profile,
        profiles::unapply_profile,
        topics::topology,
        topics::topics,
        topics::change_topic,
        health::health,
        dead_letters::list_dead_letters,
        dead_letters::get_dead_letter,
        dead_letters::replay_dead_letter,
        dead_letters::replay_all_dead_letters,
        dead_letters::discard_dead_letter,
    ),
    modifiers(&BearerToken),
    tags(
        (name = "jobs", description = "Sling's JobManager over HTTP"),
        (name = "assets", description = "The asset repository and its ingestion"),
        (name = "topology", description = "Instances, their topics, live enablement"),
        (name = "dead letters", description = "Messages nobody could act on: inspect, replay, discard"),
        (name = "operations", description = "Health")
    )
)]
pub struct ApiDoc;

/// Declares the bearer token scheme.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// `GET /api/openapi.json`.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    Json(doc)
}

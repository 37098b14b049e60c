//! `GET /v1/jobs`: the caller's jobs, newest first, a page at a time.

use axum::{
    Extension, Json,
    extract::{RawQuery, State},
};
use minimoto_common::{ErrorCode, JobId, job::Status, ports::JobQuery, spec::Violation};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::{
    auth::Caller,
    error::{ApiError, ApiResult, Problem},
    state::AppState,
    view::JobView,
};

/// Jobs a page holds unless `limit` says otherwise …
pub const DEFAULT_LIMIT: usize = 20;
/// … and at most.
pub const MAX_LIMIT: usize = 100;

/// The query of `GET /v1/jobs`.
#[derive(Debug, Default, IntoParams)]
#[into_params(parameter_in = Query)]
#[expect(
    dead_code,
    reason = "documents the query for OpenAPI; `parse` reads it"
)]
pub struct ListParams {
    /// Jobs per page, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100, example = 20)]
    limit: Option<u32>,
    /// Where the page starts: the `next_cursor` of the page before (a job id).
    #[param(value_type = Option<String>, format = Uuid)]
    cursor: Option<String>,
    /// Only jobs in this status.
    status: Option<Status>,
}

/// One page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Newest first.
    pub jobs: Vec<JobView>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(format = Uuid)]
    pub next_cursor: Option<String>,
}

/// Reads the query by hand, so that every wrong parameter is named (422 `invalid-query`, one
/// entry per parameter in `errors`).
fn parse(raw: Option<&str>) -> ApiResult<(Option<Status>, Option<JobId>, usize)> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("the query string: {e}")))?;
    let (mut status, mut cursor, mut limit) = (None, None, DEFAULT_LIMIT);
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut wrong = |field: &str, message: String| {
        errors.push(Violation {
            field: field.to_owned(),
            message,
        })
    };
    for (name, value) in &pairs {
        if !seen.insert(name.as_str()) {
            wrong(name, "given more than once".into());
            continue;
        }
        match name.as_str() {
            "limit" => match value.parse::<usize>() {
                Ok(n @ 1..=MAX_LIMIT) => limit = n,
                _ => wrong(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_LIMIT}, got {value:?}"),
                ),
            },
            "cursor" => match value.parse::<JobId>() {
                Ok(id) => cursor = Some(id),
                Err(_) => wrong(
                    "cursor",
                    format!(
                        "{value:?} is not a cursor this server gave (use a page's next_cursor)"
                    ),
                ),
            },
            "status" => match serde_json::from_value::<Status>(value.as_str().into()) {
                Ok(s) => status = Some(s),
                Err(_) => wrong(
                    "status",
                    format!(
                        "must be queued, running, succeeded, failed or cancelled, got {value:?}"
                    ),
                ),
            },
            other => wrong(
                other,
                "unknown parameter (this route takes limit, cursor and status)".into(),
            ),
        }
    }
    if errors.is_empty() {
        Ok((status, cursor, limit))
    } else {
        Err(ApiError::invalid(
            ErrorCode::InvalidQuery,
            "query parameters",
            errors,
        ))
    }
}

/// List your jobs, newest first.
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(ListParams),
    responses(
        (status = 200, description = "A page of jobs", body = JobList),
        (status = 422, description = "A parameter is wrong (each named in `errors`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<JobList>> {
    let (status, before, limit) = parse(raw.as_deref())?;
    // One more than the page, to know whether another follows.
    let mut jobs = state
        .jobs
        .list(&JobQuery {
            tenant: caller.tenant,
            status,
            before,
            limit: limit + 1,
        })
        .await?;
    let more = jobs.len() > limit;
    jobs.truncate(limit);
    let next_cursor = more
        .then(|| jobs.last().map(|j| j.id.to_string()))
        .flatten();
    let mut views = Vec::with_capacity(jobs.len());
    let now = chrono::Utc::now();
    // An expired record is left out (the cursor still moves past it: a page may be short).
    for job in jobs.into_iter().filter(|j| !j.record_expired(now)) {
        views.push(JobView::listed(job, state.blobs.as_ref(), state.config.url_ttl).await?);
    }
    Ok(Json(JobList {
        jobs: views,
        next_cursor,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_wrong_parameter_is_named() {
        assert_eq!(parse(None).expect("none"), (None, None, DEFAULT_LIMIT));
        let id = JobId::new();
        assert_eq!(
            parse(Some(&format!("limit=5&status=running&cursor={id}"))).expect("all"),
            (Some(Status::Running), Some(id), 5)
        );
        let e = parse(Some("limit=0&status=done&cursor=x&color=red&limit=2")).expect_err("bad");
        let fields: Vec<_> = e.errors.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["limit", "status", "cursor", "color", "limit"]);
        assert_eq!(e.code, ErrorCode::InvalidQuery);
        assert!(parse(Some("limit=101")).is_err() && parse(Some("limit=-1")).is_err());
    }
}

//! Bearer-token authentication. Tokens are compared by their SHA-256, so the
//! configuration never holds a usable token.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        // The scheme name is case-insensitive (RFC 7235).
        .and_then(|value| {
            value
                .split_once(' ')
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token)
        })
        .ok_or(ApiError::Unauthorized)?;
    let hash = hex::encode(Sha256::digest(token.trim().as_bytes()));
    if !state.token_hashes.contains(&hash) {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(request).await)
}

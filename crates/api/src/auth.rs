//! Bearer-token authentication. Tokens are compared by their SHA-256, so the
//! configuration never holds a usable token; a revoked hash is refused even
//! when it is still listed as accepted.

use crate::config::AuthConfig;
use crate::error::ApiError;
use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The hashes of the tokens to accept: configured minus revoked, each checked
/// to be a SHA-256 hex digest.
pub fn accepted_hashes(config: &AuthConfig) -> anyhow::Result<Vec<String>> {
    let normalised = |hashes: &[String], key: &str| -> anyhow::Result<Vec<String>> {
        hashes
            .iter()
            .map(|hash| {
                let hash = hash.trim().to_ascii_lowercase();
                anyhow::ensure!(
                    hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
                    "auth.{key} holds {:?}, which is not a SHA-256 hex digest",
                    hash.get(..8).unwrap_or(&hash)
                );
                Ok(hash)
            })
            .collect()
    };
    let revoked = normalised(&config.revoked_sha256, "revoked_sha256")?;
    let accepted: Vec<String> = normalised(&config.token_sha256, "token_sha256")?
        .into_iter()
        .filter(|hash| !revoked.contains(hash))
        .collect();
    if accepted.is_empty() {
        tracing::warn!("auth: no token is accepted; every /api/v1 data request will get 401");
    }
    Ok(accepted)
}

pub async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
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
        });
    let known = token.is_some_and(|token| {
        let hash = hex::encode(Sha256::digest(token.trim().as_bytes()));
        state.token_hashes.contains(&hash)
    });
    if !known {
        // RFC 6750: a 401 names the scheme the client should use.
        let mut response = ApiError::Unauthorized.into_response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    #[test]
    fn a_revoked_token_is_not_accepted_even_when_listed() {
        let config = AuthConfig {
            token_sha256: vec![hash("kept"), hash("leaked").to_ascii_uppercase()],
            revoked_sha256: vec![format!(" {} ", hash("leaked"))],
        };
        let accepted = accepted_hashes(&config).expect("valid hashes");
        assert_eq!(accepted, vec![hash("kept")]);
    }

    #[test]
    fn a_hash_that_is_not_sha256_hex_is_a_start_up_error() {
        for (tokens, revoked) in [
            (vec!["secret-token".to_string()], vec![]),
            (vec![hash("kept")], vec!["abc".to_string()]),
        ] {
            let config = AuthConfig {
                token_sha256: tokens,
                revoked_sha256: revoked,
            };
            assert!(accepted_hashes(&config).is_err());
        }
    }
}

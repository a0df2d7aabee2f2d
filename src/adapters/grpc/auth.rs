//! Who is calling (SPEC section 6, "Auth"): the [`Authenticator`]
//! interceptor verifies the bearer JWT in the `authorization` metadata and
//! stores the [`Caller`] in the request extensions; the services turn it into
//! the core's [`Actor`] with [`desk_actor`] and [`staff_actor`].
//!
//! This module decides only identity and the one rule the core cannot see
//! (an agent acts only on itself). Ownership, lead groups and admin-only
//! commands are the core's checks.

use super::GrpcError;
use crate::config::{AuthMode, GrpcAuth};
use crate::core::{Actor, Role};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::path::Path;
use std::sync::Arc;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// The identity the interceptor attached to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A verified token: `sub` and `role`.
    Token(Actor),
    /// Authentication is switched off (`grpc.auth.mode = "none"`).
    Open,
}

/// The claims this service reads; `exp` (and `iss`/`aud` when configured)
/// are checked by the JWT library.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    role: Option<String>,
}

struct Verifier {
    key: DecodingKey,
    validation: Validation,
}

/// Verifies callers; a `tonic` interceptor. Cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    verifier: Option<Arc<Verifier>>,
}

impl Authenticator {
    /// Reads the key named by `[grpc.auth]` (inline secret, secret file or
    /// RS256 public key file) and prepares the checks.
    pub fn from_settings(auth: &GrpcAuth) -> Result<Authenticator, GrpcError> {
        match auth.auth_mode() {
            Some(AuthMode::None) => return Ok(Authenticator::open()),
            Some(AuthMode::Jwt) => {}
            None => return Err(GrpcError::Auth(format!("unknown mode {:?}; use \"jwt\" or \"none\"", auth.mode))),
        }
        let (key, algorithm) = decoding_key(auth)?;
        let mut validation = Validation::new(algorithm);
        // A token issued for later (`nbf`) is refused until then.
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if let Some(issuer) = &auth.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &auth.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(Authenticator { verifier: Some(Arc::new(Verifier { key, validation })) })
    }

    /// Lets every call through: local demos only.
    pub fn open() -> Authenticator {
        Authenticator { verifier: None }
    }

    /// Whether tokens are checked.
    pub fn is_enabled(&self) -> bool {
        self.verifier.is_some()
    }

    fn caller(&self, metadata: &tonic::metadata::MetadataMap) -> Result<Caller, Status> {
        let Some(verifier) = &self.verifier else { return Ok(Caller::Open) };
        let header = metadata.get("authorization").ok_or_else(|| {
            Status::unauthenticated("missing `authorization` metadata; send `authorization: Bearer <JWT>`")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(bearer_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::unauthenticated("`authorization` metadata must be `Bearer <JWT>`"))?;
        let claims = jsonwebtoken::decode::<Claims>(token, &verifier.key, &verifier.validation)
            .map_err(|e| Status::unauthenticated(token_problem(e.kind())))?
            .claims;
        if claims.sub.is_empty() {
            return Err(Status::unauthenticated("token has no `sub` claim; it must name the agent id"));
        }
        let role = match claims.role.as_deref() {
            Some("agent") => Role::Agent,
            Some("lead") => Role::Lead,
            Some("admin") => Role::Admin,
            Some(other) => {
                return Err(Status::unauthenticated(format!(
                    "token role `{other}` is not one of `agent`, `lead`, `admin`"
                )))
            }
            None => return Err(Status::unauthenticated("token has no `role` claim (`agent`, `lead` or `admin`)")),
        };
        Ok(Caller::Token(Actor { id: claims.sub.as_str().into(), role }))
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let caller = self.caller(request.metadata())?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

fn decoding_key(auth: &GrpcAuth) -> Result<(DecodingKey, Algorithm), GrpcError> {
    if let Some(path) = &auth.rs256_public_key_file {
        let pem = read(path, "grpc.auth.rs256_public_key_file")?;
        let key = DecodingKey::from_rsa_pem(&pem).map_err(|e| {
            GrpcError::Auth(format!("rs256_public_key_file {}: not a PEM RSA public key: {e}", path.display()))
        })?;
        return Ok((key, Algorithm::RS256));
    }
    let secret = match (&auth.hs256_secret, &auth.hs256_secret_file) {
        (Some(secret), _) if !secret.expose().is_empty() => secret.expose().as_bytes().to_vec(),
        (_, Some(path)) => {
            let mut bytes = read(path, "grpc.auth.hs256_secret_file")?;
            bytes.truncate(bytes.trim_ascii_end().len());
            bytes
        }
        _ => {
            return Err(GrpcError::Auth(
                "mode \"jwt\" needs hs256_secret, hs256_secret_file or rs256_public_key_file".to_string(),
            ))
        }
    };
    // check-config holds an inline secret to this; one read from a file is
    // only known here.
    let least = crate::config::validate::adapters::MIN_HS256_SECRET_BYTES;
    if secret.len() < least {
        return Err(GrpcError::Auth(format!(
            "the HS256 secret is {} bytes; use at least {least} random bytes (e.g. `openssl rand -base64 48`)",
            secret.len()
        )));
    }
    Ok((DecodingKey::from_secret(&secret), Algorithm::HS256))
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, GrpcError> {
    std::fs::read(path).map_err(|source| GrpcError::ReadFile { what, path: path.to_path_buf(), source })
}

/// What is wrong with a token, in words a desktop developer can act on.
fn token_problem(kind: &ErrorKind) -> String {
    let text = match kind {
        ErrorKind::ExpiredSignature => "token has expired; obtain a new one",
        ErrorKind::InvalidSignature => "token signature does not verify with the server's key",
        ErrorKind::InvalidAlgorithm => "token is signed with an algorithm this server does not accept",
        ErrorKind::InvalidIssuer => "token `iss` is not the configured issuer",
        ErrorKind::InvalidAudience => "token `aud` is not the configured audience",
        ErrorKind::ImmatureSignature => "token is not valid yet (`nbf`)",
        ErrorKind::MissingRequiredClaim(claim) => return format!("token lacks the required `{claim}` claim"),
        ErrorKind::InvalidClaimFormat(claim) => return format!("token claim `{claim}` has the wrong type"),
        _ => "token is not a well-formed JWT",
    };
    text.to_string()
}

fn caller<T>(request: &Request<T>) -> Result<&Caller, Status> {
    request
        .extensions()
        .get::<Caller>()
        .ok_or_else(|| Status::internal("the authentication layer did not run for this service"))
}

/// The actor of an `AgentDesk` call for agent `agent_id`: the token's
/// subject, which must be that agent; an admin acts as that agent (to sign
/// off a desktop left on, say), so the core's checks of who holds what
/// apply as to the agent. With auth off, the agent itself.
pub fn desk_actor<T>(request: &Request<T>, agent_id: &str) -> Result<Actor, Status> {
    match caller(request)? {
        Caller::Open => Ok(Actor::agent(agent_id)),
        Caller::Token(actor) if actor.role == Role::Admin => {
            if *actor.id != *agent_id {
                let (admin, agent_id) =
                    (crate::adapters::redact::Redacted(&actor.id), crate::adapters::redact::Redacted(agent_id));
                tracing::info!(%admin, %agent_id, "an admin acts as an agent on AgentDesk");
            }
            Ok(Actor::agent(agent_id))
        }
        Caller::Token(actor) if *actor.id == *agent_id => Ok(actor.clone()),
        Caller::Token(actor) => {
            Err(Status::permission_denied(format!("`{}` may act only as itself, not as agent `{agent_id}`", actor.id)))
        }
    }
}

/// As [`desk_actor`], except that an admin acting for another agent stays
/// itself: for what an admin may do in its own name (complete an agent's
/// chat, set its presence), so that the agent's desktops are told who did.
pub fn desk_or_admin_actor<T>(request: &Request<T>, agent_id: &str) -> Result<Actor, Status> {
    match caller(request)? {
        Caller::Token(actor) if actor.role == Role::Admin && *actor.id != *agent_id => {
            let (admin, agent_id) =
                (crate::adapters::redact::Redacted(&actor.id), crate::adapters::redact::Redacted(agent_id));
            tracing::info!(%admin, %agent_id, "an admin acts on an agent's desk");
            Ok(actor.clone())
        }
        _ => desk_actor(request, agent_id),
    }
}

/// The actor of a `Handoff` or `Ops` call: the token's subject and role;
/// with auth off, an anonymous admin.
pub fn staff_actor<T>(request: &Request<T>) -> Result<Actor, Status> {
    match caller(request)? {
        Caller::Open => Ok(Actor { id: "anonymous".into(), role: Role::Admin }),
        Caller::Token(actor) => Ok(actor.clone()),
    }
}

/// The token of a `Bearer <token>` header; the scheme name is
/// case-insensitive (RFC 7235), so `BEARER` and `bearer` work too.
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[cfg(test)]
mod tests;

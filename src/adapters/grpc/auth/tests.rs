//! Token checks of the [`Authenticator`] and the actor rules built on them.

use super::*;
use crate::config::Secret;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{json, Value};
use tonic::metadata::MetadataMap;
use tonic::Code;

const SECRET: &str = "unit-test-secret-that-is-long-enough";

fn jwt(issuer: Option<&str>, audience: Option<&str>) -> Authenticator {
    let auth = GrpcAuth {
        mode: "jwt".into(),
        hs256_secret: Some(Secret::new(SECRET)),
        issuer: issuer.map(str::to_string),
        audience: audience.map(str::to_string),
        ..GrpcAuth::default()
    };
    Authenticator::from_settings(&auth).expect("valid settings")
}

fn in_an_hour() -> u64 {
    jsonwebtoken::get_current_timestamp() + 3600
}

fn sign(claims: Value) -> String {
    jsonwebtoken::encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

fn bearer(value: &str) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    metadata.insert("authorization", value.parse().unwrap());
    metadata
}

fn check(auth: &Authenticator, claims: Value) -> Result<Caller, Status> {
    auth.caller(&bearer(&format!("Bearer {}", sign(claims))))
}

fn problem(result: Result<Caller, Status>) -> String {
    let status = result.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{}", status.message());
    status.message().to_string()
}

#[test]
fn a_valid_token_names_the_actor() {
    let caller = check(&jwt(None, None), json!({ "sub": "a1", "role": "lead", "exp": in_an_hour() })).unwrap();
    assert_eq!(caller, Caller::Token(Actor { id: "a1".into(), role: Role::Lead }));
    // The scheme name is case-insensitive.
    let token = sign(json!({ "sub": "a1", "role": "agent", "exp": in_an_hour() }));
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        let caller = jwt(None, None).caller(&bearer(&format!("{scheme} {token}")));
        assert_eq!(caller.unwrap(), Caller::Token(Actor::agent("a1")), "{scheme}");
    }
}

#[test]
fn missing_or_malformed_tokens_say_what_is_wrong() {
    let auth = jwt(None, None);
    assert!(problem(auth.caller(&MetadataMap::new())).contains("missing `authorization`"));
    assert!(problem(auth.caller(&bearer("Basic abc"))).contains("Bearer <JWT>"));
    assert!(problem(auth.caller(&bearer("Bearer not-a-jwt"))).contains("well-formed"));
    let expired = json!({ "sub": "a1", "role": "agent", "exp": jsonwebtoken::get_current_timestamp() - 3600 });
    assert!(problem(check(&auth, expired)).contains("expired"));
    assert!(problem(check(&auth, json!({ "sub": "a1", "role": "agent" }))).contains("`exp`"));
    let later = json!({ "sub": "a1", "role": "agent", "exp": in_an_hour(), "nbf": in_an_hour() - 60 });
    assert!(problem(check(&auth, later)).contains("`nbf`"));
    assert!(problem(check(&auth, json!({ "role": "agent", "exp": in_an_hour() }))).contains("`sub`"));
    assert!(problem(check(&auth, json!({ "sub": "a1", "exp": in_an_hour() }))).contains("`role`"));
    assert!(problem(check(&auth, json!({ "sub": "a1", "role": "root", "exp": in_an_hour() }))).contains("root"));
    let forged = jsonwebtoken::encode(
        &Header::default(),
        &json!({ "sub": "a1", "role": "admin", "exp": in_an_hour() }),
        &EncodingKey::from_secret(b"another-secret-of-the-same-length!!!"),
    )
    .unwrap();
    assert!(problem(auth.caller(&bearer(&format!("Bearer {forged}")))).contains("signature"));
}

#[test]
fn issuer_and_audience_are_checked_when_configured() {
    let auth = jwt(Some("sso"), Some("ticket-router"));
    let good = json!({ "sub": "a1", "role": "agent", "exp": in_an_hour(), "iss": "sso", "aud": "ticket-router" });
    assert!(check(&auth, good).is_ok());
    let wrong_iss = json!({ "sub": "a1", "role": "agent", "exp": in_an_hour(), "iss": "x", "aud": "ticket-router" });
    assert!(problem(check(&auth, wrong_iss)).contains("iss"));
    let no_aud = json!({ "sub": "a1", "role": "agent", "exp": in_an_hour(), "iss": "sso" });
    assert!(problem(check(&auth, no_aud)).contains("aud"));
    // Without a configured audience, a token's `aud` is not held against it.
    let open = json!({ "sub": "a1", "role": "agent", "exp": in_an_hour(), "aud": "anything" });
    assert!(check(&jwt(None, None), open).is_ok());
}

#[test]
fn agents_act_only_as_themselves_unless_admin() {
    let with = |caller: Caller| {
        let mut request = Request::new(());
        request.extensions_mut().insert(caller);
        request
    };
    let agent = with(Caller::Token(Actor::agent("a1")));
    assert_eq!(desk_actor(&agent, "a1").unwrap(), Actor::agent("a1"));
    assert_eq!(desk_actor(&agent, "a2").unwrap_err().code(), Code::PermissionDenied);
    let lead = with(Caller::Token(Actor { id: "l1".into(), role: Role::Lead }));
    assert_eq!(desk_actor(&lead, "a2").unwrap_err().code(), Code::PermissionDenied);
    let admin = with(Caller::Token(Actor { id: "boss".into(), role: Role::Admin }));
    assert_eq!(desk_actor(&admin, "a2").unwrap(), Actor::agent("a2"), "as the agent, held to what it holds");
    let open = with(Caller::Open);
    assert_eq!(desk_actor(&open, "a2").unwrap(), Actor::agent("a2"));
    assert_eq!(staff_actor(&open).unwrap(), Actor { id: "anonymous".into(), role: Role::Admin });
    assert_eq!(staff_actor(&Request::new(())).unwrap_err().code(), Code::Internal);
}

#[test]
fn key_settings_problems_are_reported() {
    let none = GrpcAuth { mode: "jwt".into(), ..GrpcAuth::default() };
    assert!(matches!(Authenticator::from_settings(&none), Err(GrpcError::Auth(_))));
    let missing = GrpcAuth { hs256_secret_file: Some("/nonexistent/secret".into()), ..none.clone() };
    assert!(matches!(Authenticator::from_settings(&missing), Err(GrpcError::ReadFile { .. })));
    let open = GrpcAuth { mode: "none".into(), ..GrpcAuth::default() };
    assert!(!Authenticator::from_settings(&open).unwrap().is_enabled());
}

#[test]
fn a_secret_file_is_read_without_its_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let auth = GrpcAuth { mode: "jwt".into(), hs256_secret_file: Some(path), ..GrpcAuth::default() };
    let auth = Authenticator::from_settings(&auth).unwrap();
    assert!(check(&auth, json!({ "sub": "a1", "role": "admin", "exp": in_an_hour() })).is_ok());
}

#[test]
fn a_short_secret_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "changeme\n").unwrap();
    let auth = GrpcAuth { mode: "jwt".into(), hs256_secret_file: Some(path), ..GrpcAuth::default() };
    let Err(GrpcError::Auth(message)) = Authenticator::from_settings(&auth) else { panic!("a guessable secret") };
    assert!(message.contains("8 bytes") && message.contains("at least 32"), "{message}");
}

#[test]
fn rs256_tokens_verify_with_the_public_key_file() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/fixtures/jwt");
    let auth =
        GrpcAuth { mode: "jwt".into(), rs256_public_key_file: Some(dir.join("jwt-rs256.pub")), ..GrpcAuth::default() };
    let auth = Authenticator::from_settings(&auth).unwrap();
    let private = EncodingKey::from_rsa_pem(&std::fs::read(dir.join("jwt-rs256.key")).unwrap()).unwrap();
    let claims = json!({ "sub": "a1", "role": "agent", "exp": in_an_hour() });
    let token = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &private).unwrap();
    assert_eq!(auth.caller(&bearer(&format!("Bearer {token}"))).unwrap(), Caller::Token(Actor::agent("a1")));
    // An HS256 token cannot pass as RS256.
    assert!(problem(check(&auth, claims)).contains("algorithm"));
    let not_a_key = GrpcAuth { rs256_public_key_file: Some(dir.join("README.md")), ..GrpcAuth::default() };
    assert!(matches!(Authenticator::from_settings(&not_a_key), Err(GrpcError::Auth(_))));
}

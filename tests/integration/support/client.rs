//! Clients for the tests: gRPC stubs with an optional bearer token, JWT
//! minting, and inquiry publishing the way a publishing service does it.

use std::time::Duration;
use ticket_router::proto;
use ticket_router::proto::agent_desk_client::AgentDeskClient;
use ticket_router::proto::handoff_client::HandoffClient;
use ticket_router::proto::ops_client::OpsClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Status;

/// The HS256 secret of test configurations that switch auth on.
pub const TEST_SECRET: &str = "test-secret-that-is-long-enough-for-hs256";

/// `[grpc.auth]` section with JWT on and the test secret.
pub fn jwt_auth_section() -> String {
    format!("[grpc.auth]\nmode = \"jwt\"\nhs256_secret = \"{TEST_SECRET}\"\n")
}

/// A signed token for `sub` with `role`, valid for an hour.
pub fn token(sub: &str, role: &str) -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600;
    let claims = serde_json::json!({ "sub": sub, "role": role, "exp": exp });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .expect("sign token")
}

/// Adds `authorization: Bearer <token>` when a token is set.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("ascii token"));
        }
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, Bearer>;

/// The three services over one channel.
pub struct Clients {
    pub desk: AgentDeskClient<Authed>,
    pub handoff: HandoffClient<Authed>,
    pub ops: OpsClient<Authed>,
}

/// Connects to `url` (`http://host:port`) with an optional token.
pub async fn connect(url: &str, token: Option<String>) -> Clients {
    let channel = Channel::from_shared(url.to_string())
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .expect("connect to gRPC");
    let bearer = Bearer(token);
    Clients {
        desk: AgentDeskClient::with_interceptor(channel.clone(), bearer.clone()),
        handoff: HandoffClient::with_interceptor(channel.clone(), bearer.clone()),
        ops: OpsClient::with_interceptor(channel, bearer),
    }
}

/// A presence request: AVAILABLE in `groups` with proficiency 3 unless given.
pub fn presence(agent: &str, groups: &[(&str, u32)], max: u32) -> proto::SetPresenceRequest {
    proto::SetPresenceRequest {
        agent_id: agent.into(),
        status: proto::AgentStatus::Available as i32,
        groups: groups.iter().map(|&(g, p)| proto::GroupMembership { group: g.into(), proficiency: p }).collect(),
        max_concurrent: max,
        languages: vec!["zh".into()],
        skills: vec![],
    }
}

/// A JSON inquiry body with the SPEC's field names.
pub fn inquiry_json(id: &str, category: &str, vip_tier: u32, is_fan: bool) -> String {
    serde_json::json!({
        "id": id,
        "platform": "taobao",
        "customer": { "id": format!("cust-{id}"), "vip_tier": vip_tier, "is_fan": is_fan },
        "category": category,
        "subject": "test inquiry",
    })
    .to_string()
}

/// Publishes with plain core NATS (no JetStream client), as any language's client can.
pub async fn publish(client: &async_nats::Client, subject: String, body: String) {
    client.publish(subject, body.into()).await.expect("publish");
    client.flush().await.expect("flush");
}

/// The next message of a desktop's offer stream, failing after 20 s.
pub async fn next_offer(stream: &mut tonic::Streaming<proto::Assignment>) -> proto::Assignment {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("an offer within 20 s")
            .expect("stream open")
            .expect("stream not ended");
        // Past withdrawals, replayed chats, the catch-up mark and status notices.
        if !message.withdrawn && !message.active && message.inquiry.is_some() {
            return message;
        }
    }
}

/// The stream's next message or end, past the `caught_up` mark a
/// subscription's catch-up ends with.
pub async fn after_mark(stream: &mut tonic::Streaming<proto::Assignment>) -> Result<Option<proto::Assignment>, Status> {
    loop {
        match stream.message().await {
            Ok(Some(message)) if message.caught_up => continue,
            other => return other,
        }
    }
}

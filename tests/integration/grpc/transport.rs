//! What carries the API: health and reflection, and TLS.

use super::{jwt_auth, open_auth, start, start_with};
use ticket_router::config::{GrpcSettings, GrpcTls};
use ticket_router::proto;

#[tokio::test]
async fn health_reports_serving_and_reflection_lists_the_services() {
    use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest};
    use tonic_reflection::pb::v1::{
        server_reflection_client::ServerReflectionClient, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse, ServerReflectionRequest,
    };
    let server = start(jwt_auth()).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url.clone()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel.clone());
    let services = ["", "ticketrouter.v1.AgentDesk", "ticketrouter.v1.Handoff", "ticketrouter.v1.Ops"];
    for service in services {
        let reply = health.check(HealthCheckRequest { service: service.into() }).await.expect("no token needed");
        assert_eq!(reply.into_inner().status, ServingStatus::Serving as i32, "{service:?}");
    }

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(channel.clone())
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let reply = replies.message().await.unwrap().expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else { panic!("{reply:?}") };
    let names: Vec<&str> = list.service.iter().map(|s| s.name.as_str()).collect();
    for service in &services[1..] {
        assert!(names.contains(service), "{service} in {names:?}");
    }
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    // The older reflection protocol, which many tools still ask, answers too.
    use tonic_reflection::pb::v1alpha as alpha;
    let request = alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut replies = alpha::server_reflection_client::ServerReflectionClient::new(channel)
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("v1alpha reflection")
        .into_inner();
    let reply = replies.message().await.unwrap().expect("one reply");
    let Some(alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) = reply.message_response
    else {
        panic!("{reply:?}")
    };
    assert!(list.service.iter().any(|s| s.name == "ticketrouter.v1.AgentDesk"), "{list:?}");
    server.stop().await;
}

#[tokio::test]
async fn tls_serves_the_api_and_refuses_plain_text() {
    use tonic::transport::{Certificate, Channel, ClientTlsConfig};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/integration/fixtures/grpc-tls");
    let tls = GrpcTls { cert_file: Some(dir.join("server.pem")), key_file: Some(dir.join("server.key")) };
    let server = start_with(GrpcSettings { tls, auth: open_auth(), ..GrpcSettings::default() }).await;
    let ca = Certificate::from_pem(std::fs::read(dir.join("ca.pem")).unwrap());
    let channel = Channel::from_shared(server.url.replace("http://", "https://"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(ca).domain_name("localhost"))
        .unwrap()
        .connect()
        .await
        .expect("TLS handshake");
    let mut ops = proto::ops_client::OpsClient::new(channel);
    assert_eq!(ops.get_queues(proto::GetQueuesRequest {}).await.unwrap().into_inner().groups.len(), 6);
    let plain = Channel::from_shared(server.url.clone()).unwrap().connect_lazy();
    assert!(proto::ops_client::OpsClient::new(plain).get_queues(proto::GetQueuesRequest {}).await.is_err());
    server.stop().await;
}

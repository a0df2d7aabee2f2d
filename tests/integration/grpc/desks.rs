//! What an agent's desktops are told of what others did to its work.

use super::{action, jwt_auth, open_auth, start, subscribe, WAIT};
use crate::support::client::{after_mark, next_offer, presence, token};
use std::time::Duration;
use ticket_router::adapters::grpc::DESKTOPS_PER_AGENT;
use ticket_router::core::Category;
use ticket_router::proto;
use tonic::Code;

#[tokio::test]
async fn an_admin_completing_a_chat_or_setting_a_status_is_told_to_the_agents_desktop() {
    let server = start(jwt_auth()).await;
    let mut agent = server.clients(Some(token("a1", "agent"))).await;
    agent.desk.set_presence(presence("a1", &[("orders", 3)], 2)).await.unwrap();
    let mut offers = subscribe(&mut agent, "a1").await;
    server.arrive("q1", Category::Order).await;
    assert_eq!(next_offer(&mut offers).await.inquiry.unwrap().id, "q1");
    agent.desk.accept(action("a1", "q1")).await.unwrap();

    let mut admin = server.clients(Some(token("boss", "admin"))).await;
    let wrong = admin.desk.complete(action("a2", "q1")).await.expect_err("q1 is a1's, not a2's");
    assert_eq!(wrong.code(), Code::PermissionDenied, "{}", wrong.message());
    admin.desk.complete(action("a1", "q1")).await.expect("an admin signs off the chat");
    let told = tokio::time::timeout(WAIT, offers.message()).await.unwrap().unwrap().expect("a message");
    assert!(told.withdrawn, "{told:?}");
    assert_eq!(
        (told.inquiry.unwrap().id.as_str(), told.note.unwrap().summary.as_str()),
        ("q1", "completed by an admin")
    );

    let on_break =
        proto::SetPresenceRequest { status: proto::AgentStatus::Break as i32, ..presence("a1", &[("orders", 3)], 2) };
    admin.desk.set_presence(on_break).await.unwrap();
    let told = tokio::time::timeout(WAIT, offers.message()).await.unwrap().unwrap().expect("a message");
    assert_eq!(
        (told.status, told.note.unwrap().summary.as_str()),
        (proto::AgentStatus::Break as i32, "set by an admin")
    );
    server.stop().await;
}

#[tokio::test]
async fn one_desktop_too_many_ends_the_agents_oldest_stream_and_the_rest_get_offers() {
    let server = start(open_auth()).await;
    let mut c = server.clients(None).await;
    c.desk.set_presence(presence("a1", &[("orders", 3)], 2)).await.unwrap();
    let mut streams = Vec::new();
    for _ in 0..=DESKTOPS_PER_AGENT {
        streams.push(subscribe(&mut c, "a1").await);
    }
    let oldest = tokio::time::timeout(Duration::from_secs(10), after_mark(&mut streams[0])).await;
    let end = oldest.expect("the oldest stream ends").expect_err("with an error status");
    assert_eq!(end.code(), Code::FailedPrecondition, "{}", end.message());
    assert!(end.message().contains("more than 8 desktops"), "{}", end.message());
    server.arrive("q1", Category::Order).await;
    for offers in &mut streams[1..] {
        assert_eq!(next_offer(offers).await.inquiry.unwrap().id, "q1");
    }
    server.stop().await;
}

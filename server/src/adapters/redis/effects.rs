//! Effects routed back to gateways: a worker publishes each message for a learner's socket on
//! the `<namespace>:effects` channel; every gateway subscribes and delivers the ones for sockets it
//! holds (the hub ignores the rest). Delivery is best effort, like the socket itself: a lost
//! credit update is superseded by the next, and challenges are re-sent in `welcome` on resume.

use std::sync::Arc;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::RedisTarget;
use crate::app::hub::{Hub, Outbound};
use crate::app::protocol::ServerMsg;

/// One effect on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    pub session: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<ServerMsg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<(u16, String)>,
}

impl Envelope {
    pub fn outbound(self) -> Option<Outbound> {
        match (self.msg, self.close) {
            (Some(m), _) => Some(Outbound::Msg(Box::new(m))),
            (None, Some((code, why))) => Some(Outbound::Close(code, why)),
            (None, None) => None,
        }
    }
}

/// Subscribes to the effects channel and delivers to local sockets until the connection ends;
/// reconnects with a short pause. Runs for the life of a gateway.
pub async fn deliver(target: RedisTarget, channel: String, hub: Arc<Hub>) {
    let url = match &target {
        RedisTarget::Single(u) => u.clone(),
        RedisTarget::Cluster(nodes) => nodes.first().cloned().unwrap_or_default(),
    };
    loop {
        match subscribe_once(&url, &channel, &hub).await {
            Ok(()) => tracing::warn!("The effects subscription ended; resubscribing."),
            Err(e) => tracing::warn!(error = %e, "The effects subscription failed; retrying."),
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

async fn subscribe_once(url: &str, channel: &str, hub: &Hub) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    let mut stream = pubsub.into_on_message();
    while let Some(msg) = stream.next().await {
        let Ok(payload) = msg.get_payload::<String>() else {
            continue;
        };
        let Ok(env) = serde_json::from_str::<Envelope>(&payload) else {
            continue;
        };
        let session = env.session.clone();
        if let Some(out) = env.outbound() {
            hub.deliver(&session, out);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::protocol::ChallengeMsg;
    use crate::domain::{ChallengeKind, Millis, TerminationReason};

    /// Every message a worker can send must survive the trip to another gateway.
    #[test]
    fn every_effect_round_trips() {
        let challenge = |kind, choices: Vec<String>| {
            ServerMsg::Challenge(ChallengeMsg {
                nonce: "n".into(),
                kind,
                deadline: Millis(5),
                deadline_in_ms: 5,
                choices,
                prompt: "p".into(),
            })
        };
        let msgs = vec![
            challenge(ChallengeKind::Popup, vec!["1234".into(), "5678".into()]),
            challenge(ChallengeKind::Snapshot, vec![]),
            challenge(ChallengeKind::FaceRecheck, vec![]),
            ServerMsg::Credit {
                credited_ms: 1,
                provisional_ms: 0,
                lesson_coverage_ms: 2,
                lesson_complete: false,
            },
            ServerMsg::Warning {
                rule: "R1".into(),
                code: "fast_forward".into(),
                message: "m".into(),
            },
            ServerMsg::Ended {
                reason: TerminationReason::LeaseExpired,
            },
        ];
        for m in msgs {
            let env = Envelope {
                session: "s".into(),
                msg: Some(m.clone()),
                close: None,
            };
            let back: Envelope =
                serde_json::from_str(&serde_json::to_string(&env).expect("encode"))
                    .expect("decode");
            assert_eq!(back.outbound(), Some(Outbound::Msg(Box::new(m))));
        }
        let close = Envelope {
            session: "s".into(),
            msg: None,
            close: Some((4410, "ended".into())),
        };
        let back: Envelope =
            serde_json::from_str(&serde_json::to_string(&close).expect("encode")).expect("decode");
        assert_eq!(back.outbound(), Some(Outbound::Close(4410, "ended".into())));
    }
}

//! The agent's API requests (`http://api.anthropic.com/...`): the placeholder checked, the
//! real credential put in, sent on over TLS (see `egress::inject`).

use tokio::net::TcpStream;

use super::{HttpRequest, Policy, answer, checked_addresses, rebuilt_head, refuse, relay};
use crate::egress::decisions::Decision;
use crate::egress::inject::{self, Injection};
use crate::egress::rules::parse_target;

pub(super) async fn forward(
    mut client: TcpStream,
    http: &HttpRequest,
    rest: Vec<u8>,
    injection: &Injection,
    policy: &Policy,
) {
    let mut decision = Decision::new("api", &http.target);
    let refusal = if !inject::path_allowed(&http.method, &http.path) {
        Some(refuse(
            403,
            format!(
                "{} {} is not an API call the agent may make",
                http.method, http.path
            ),
        ))
    } else if !inject::carries_placeholder(injection, &http.headers) {
        Some(refuse(
            401,
            "this request does not carry this sandbox's placeholder",
        ))
    } else {
        None
    };
    if let Some(refusal) = refusal {
        decision.reason = Some(refusal.why.clone());
        policy.log.record(&decision);
        return answer(&mut client, &refusal).await;
    }
    decision.allowed = true;
    let upstream = match parse_target(&format!("{}:{}", injection.host, injection.port), 443) {
        Ok(target) => target,
        Err(e) => {
            decision.reason = Some(e.clone());
            policy.log.record(&decision);
            return answer(&mut client, &refuse(502, e)).await;
        }
    };
    let addresses = match checked_addresses(&upstream, policy).await {
        Ok(addresses) => addresses,
        Err(refusal) => {
            decision.reason = Some(refusal.why.clone());
            policy.log.record(&decision);
            return answer(&mut client, &refusal).await;
        }
    };
    let mut last = String::from("no address");
    for address in addresses {
        match inject::connect(injection, address).await {
            Ok(tls) => {
                decision.address = Some(address.to_string());
                let authority = match injection.port {
                    443 => injection.host.clone(),
                    port => format!("{}:{port}", injection.host),
                };
                let upstream_request = HttpRequest {
                    authority,
                    ..http.clone()
                };
                let head = rebuilt_head(
                    &upstream_request,
                    &inject::CREDENTIAL_HEADERS,
                    &inject::credential_headers(injection),
                );
                let (up, down) = relay(client, tls, &[head, rest].concat()).await;
                decision.bytes_up = up;
                decision.bytes_down = down;
                policy.log.record(&decision);
                return;
            }
            Err(e) => last = e,
        }
    }
    decision.reason = Some(last.clone());
    policy.log.record(&decision);
    answer(&mut client, &refuse(502, last)).await;
}

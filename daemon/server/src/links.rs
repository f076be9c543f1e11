//! Live repair of what berth wired on the host: netd listens to the kernel's link and
//! address events (rtnetlink multicast, no polling) and, when a link went away, lost an
//! address, went down or left its bridge, puts back what the records say
//! ([`netd::reconcile::links`]). Bursts of events are coalesced into one pass.

use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::AsyncSocket;
use rtnetlink::constants::{RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR, RTMGRP_LINK};

/// Whether an event may mean something of berth's was removed: a link or an address
/// deleted, a link down or without a bridge. New veths (created up, with their bridge)
/// and new addresses are not.
fn matters(msg: &RouteNetlinkMessage) -> bool {
    match msg {
        RouteNetlinkMessage::DelLink(_) | RouteNetlinkMessage::DelAddress(_) => true,
        RouteNetlinkMessage::NewLink(l) => {
            !l.header.flags.contains(LinkFlags::Up) || !l.attributes.iter().any(|a| matches!(a, LinkAttribute::Controller(_)))
        }
        _ => false,
    }
}

/// Runs until the event stream ends; repairs through a blocking task per burst.
pub async fn watch(run: PathBuf) {
    let (mut conn, _handle, mut events) = match rtnetlink::new_connection() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "no netlink event stream: bridges and addresses are not repaired live");
            return;
        }
    };
    let groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR;
    if let Err(e) = conn.socket_mut().socket_mut().bind(&netlink_sys::SocketAddr::new(0, groups)) {
        tracing::warn!(error = %e, "cannot subscribe to link events: bridges and addresses are not repaired live");
        return;
    }
    tokio::spawn(conn);
    while let Some((msg, _)) = events.next().await {
        if !matches!(&msg.payload, NetlinkPayload::InnerMessage(m) if matters(m)) {
            continue;
        }
        // Coalesce the burst (a bridge deletion releases every port at once).
        tokio::time::sleep(Duration::from_millis(20)).await;
        while let Ok(Some(_)) = tokio::time::timeout(Duration::ZERO, events.next()).await {}
        let run = run.clone();
        match tokio::task::spawn_blocking(move || netd::reconcile::links(&run)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(repaired = n, "bridges, addresses and ports restored"),
            Ok(Err(e)) => tracing::warn!(error = %e, "restoring bridges and addresses failed"),
            Err(e) => tracing::warn!(error = %e, "link repair task failed"),
        }
    }
}

//! How an attachment's messages leave: the packet socket for broadcasts, a unicast
//! socket bound inside the namespace, DHCPv6 with a retry while the link-local address
//! is tentative, and the daemon's own namespace once the interface is gone (RELEASE at
//! DEL, orphaned records).

use super::{Attachment, Ctx, NOT_READY_RETRY};
use crate::cni::events as cev;
use crate::cni::netns;
use crate::cni::store::Record;
use crate::cni::writer::Writer;
use crate::daemon::events as ev;
use crate::net::udp4::Udp4Socket;
use netbond_proto::dhcp4::{self, Client, ClientId, Transmit4};
use netbond_proto::dhcp6::Transmit6;
use netbond_proto::{Engine, Instant};

use crate::logging::{debug, info, warn};
use serde_json::json;
use std::io;
use std::net::Ipv4Addr;

impl Attachment {
    pub(super) async fn send4(&mut self, tx: &Transmit4, releasing: bool) {
        let what = format!("{:?}", tx.kind).to_uppercase();
        let r = if tx.is_broadcast() {
            match &self.pkt {
                Some(p) => p.send(tx.chaddr, tx.src, tx.dst, &tx.payload).await,
                None => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "no packet socket",
                )),
            }
        } else {
            match self.unicast4(tx.src).await {
                Ok(s) => s.send(tx.dst, &tx.payload).await,
                Err(e) => Err(e),
            }
        };
        match r {
            Ok(()) => debug!("cni: {}: sent {what} to {}", self.key, tx.dst),
            Err(e) if releasing => {
                // The interface is gone (Debian's bridge plugin deletes the veth before
                // it calls IPAM DEL): tell the server from the daemon's namespace, with
                // ciaddr and the client-id that name the lease.
                match send_from_host(tx.dst, &tx.payload).await {
                    Ok(()) => info!(
                        "cni: {}: {what} sent from the daemon's namespace ({e})",
                        self.key
                    ),
                    Err(e2) => warn!("cni: {}: could not send {what}: {e}; {e2}", self.key),
                }
            }
            Err(e) => warn!(
                "cni: {}: could not send {what} to {}: {e}",
                self.key, tx.dst
            ),
        }
    }

    /// The socket bound to `src`:68 inside the namespace, opened once per address.
    pub(super) async fn unicast4(&mut self, src: Ipv4Addr) -> io::Result<&Udp4Socket> {
        if self.udp4.as_ref().map(|u| u.0) != Some(src) {
            self.udp4 = None;
            let ifname = self.key.ifname.clone();
            let s = netns::run_in(&self.netns, move || Udp4Socket::open(&ifname, src)).await?;
            self.udp4 = Some((src, s));
        }
        Ok(&self.udp4.as_ref().expect("just set").1)
    }

    pub(super) async fn send6(&mut self, tx: Transmit6, now: Instant) {
        let Some(s) = &self.udp6 else { return };
        match s.send(&tx.payload).await {
            Ok(()) => debug!("cni: {}: sent DHCPv6 {:?}", self.key, tx.msg_type),
            Err(e)
                if crate::net::udp6::is_address_not_ready(&e)
                    || e.kind() == io::ErrorKind::NetworkUnreachable =>
            {
                debug!("cni: {}: {e}; retrying", self.key);
                self.last6_error = Some(e.to_string());
                self.held6 = Some((tx, now + NOT_READY_RETRY));
            }
            Err(e) => {
                warn!("cni: {}: {e}", self.key);
                self.last6_error = Some(e.to_string());
            }
        }
    }

    pub(super) async fn release(&mut self) {
        let now = self.ctx.clock.now();
        self.waiters.clear();
        let had4 = self.v4.lease().is_some();
        self.released_events();
        self.v4.release(now);
        while let Some(tx) = self.v4.poll_transmit(now) {
            self.send4(&tx, true).await;
        }
        while self.v4.poll_event().is_some() {}
        if let Some(c) = self.v6.as_mut() {
            c.release(now);
            // One Release, no retransmission: the attachment ends now.
            if let Some(tx) = c.poll_transmit(now) {
                if let Some(s) = &self.udp6 {
                    if let Err(e) = s.send(&tx.payload).await {
                        info!("cni: {}: DHCPv6 Release not sent: {e}", self.key);
                    }
                }
            }
        }
        info!(
            "cni: {}: released{}",
            self.key,
            if had4 {
                ""
            } else {
                " (no DHCPv4 lease was held)"
            }
        );
        Writer::durable(self.ctx.writer.remove(&self.key)).await;
    }
}
/// Send a DHCPv4 message to `dst`:67 from the daemon's own namespace (the attachment's
/// interface is gone).
async fn send_from_host(dst: Ipv4Addr, payload: &[u8]) -> io::Result<()> {
    let s = tokio::net::UdpSocket::bind("0.0.0.0:0").await?;
    s.send_to(payload, (dst, 67)).await.map(|_| ())
}

/// Release a record whose namespace is gone (found at daemon start, or at DEL/GC for
/// an attachment that is not running): the DHCPv4 RELEASE goes out from the daemon's
/// namespace with ciaddr and client-id set. DHCPv6 needs the link, so that lease is
/// left to expire.
pub async fn release_orphan(ctx: &Ctx, rec: &Record) {
    if let Some(s) = &rec.lease4 {
        let now = ctx.clock.now();
        let mut l = s.lease.clone();
        l.acquired = ctx.clock.engine_from_unix(s.acquired_unix);
        let mut cfg = dhcp4::Config::new(ClientId::Raw(rec.spec.client_id.clone()));
        cfg.seed = rand::random();
        let mut c = Client::from_saved(cfg, l.clone(), now);
        // Released with the MAC the lease was acknowledged with.
        c.hw_address_changed(now, l.chaddr);
        c.release(now);
        let mut sent = false;
        while let Some(tx) = c.poll_transmit(now) {
            match send_from_host(tx.dst, &tx.payload).await {
                Ok(()) => sent = true,
                Err(e) => warn!(
                    "cni: {}: could not send RELEASE for {}: {e}",
                    rec.key, l.address
                ),
            }
        }
        let e = cev::with_attachment(
            &rec.key,
            &rec.netns,
            json!({"deconfigured": false, "sent": sent}),
        );
        ev::v4("dhcp4-released", &rec.key.ifname, None, Some(&l), e);
        if sent {
            info!(
                "cni: {}: released {} (its namespace is gone)",
                rec.key, l.address
            );
        }
    }
    Writer::durable(ctx.writer.remove(&rec.key)).await;
}

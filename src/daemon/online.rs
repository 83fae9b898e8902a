//! When the host is online: the policy behind READY=1 and `netbond wait-online`.
//!
//! Each interface task publishes whether it has a usable DHCPv4 lease and a usable
//! DHCPv6 address into one [`Board`] (a `tokio::sync::watch` channel). Whoever needs
//! to know (the readiness task, each `wait-online` request) subscribes and is woken on
//! a change: nothing polls.
//!
//! "Usable" means confirmed by a server (BOUND, RENEWING, REBINDING) or kept on the
//! interface across a restart of netbond while it is being confirmed: a restart with
//! the address still configured is online at once, which is what keeps `systemctl
//! restart` from waiting for a server.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::watch;

/// How many interfaces must be online.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// One interface is enough.
    #[default]
    Any,
    /// Every one (of those asked about).
    All,
}

impl Policy {
    /// From the configuration's `online` key (validated there).
    pub fn from_config(s: &str) -> Policy {
        if s == "all" {
            Policy::All
        } else {
            Policy::Any
        }
    }
}

/// One interface's online state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IfOnline {
    /// The interface name.
    pub name: String,
    /// A usable DHCPv4 lease.
    pub v4: bool,
    /// A usable DHCPv6 address.
    pub v6: bool,
    /// A SLAAC address (made by the kernel from a router advertisement, DAD done): the
    /// daemon tracks these from netlink, since no DHCP client of netbond makes them.
    pub ra6: bool,
}

/// Every interface's state, and whether the daemon is stopping.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// In the daemon's order.
    pub ifaces: Vec<IfOnline>,
    /// The daemon is stopping: waiters answer now.
    pub stopping: bool,
}

/// What a caller waits for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Any or all.
    pub policy: Policy,
    /// Only this interface (then any and all are the same).
    pub iface: Option<String>,
    /// Only this family (4 or 6); `None`: either family makes an interface online.
    pub family: Option<u8>,
}

impl IfOnline {
    /// Online for `family` (4, 6, or either).
    pub fn online(&self, family: Option<u8>) -> bool {
        match family {
            Some(4) => self.v4,
            Some(6) => self.v6 || self.ra6,
            _ => self.v4 || self.v6 || self.ra6,
        }
    }
}

impl Query {
    /// The interfaces this query is about; an error names the unknown interface.
    fn chosen<'a>(&self, snap: &'a Snapshot) -> Result<Vec<&'a IfOnline>, String> {
        match &self.iface {
            None => Ok(snap.ifaces.iter().collect()),
            Some(n) => match snap.ifaces.iter().find(|i| i.name == *n) {
                Some(i) => Ok(vec![i]),
                None => Err(format!(
                    "netbond does not manage {n:?}; it manages {}",
                    snap.ifaces
                        .iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
        }
    }

    /// Check the query itself (an unknown interface, a family other than 4 or 6).
    pub fn check(&self, snap: &Snapshot) -> Result<(), String> {
        if let Some(f) = self.family {
            if f != 4 && f != 6 {
                return Err(format!("family {f}: use 4 or 6"));
            }
        }
        self.chosen(snap).map(|_| ())
    }

    /// True when the snapshot satisfies the query.
    pub fn is_online(&self, snap: &Snapshot) -> bool {
        let Ok(chosen) = self.chosen(snap) else {
            return false;
        };
        match self.policy {
            Policy::Any => chosen.iter().any(|i| i.online(self.family)),
            Policy::All => !chosen.is_empty() && chosen.iter().all(|i| i.online(self.family)),
        }
    }

    /// One line saying which interfaces are and are not online, for STATUS= and the
    /// answers of `wait-online`.
    pub fn describe(&self, snap: &Snapshot) -> String {
        let chosen = match self.chosen(snap) {
            Ok(c) => c,
            Err(e) => return e,
        };
        let what = match self.family {
            Some(4) => "a DHCPv4 lease",
            Some(6) => "a global IPv6 address",
            _ => "a DHCPv4 lease or global IPv6 address",
        };
        let (on, off): (Vec<&IfOnline>, Vec<&IfOnline>) =
            chosen.iter().partition(|i| i.online(self.family));
        let names = |v: &[&IfOnline]| {
            let mut s: Vec<&str> = v.iter().take(4).map(|i| i.name.as_str()).collect();
            if v.len() > 4 {
                s.push("...");
            }
            s.join(", ")
        };
        if !on.is_empty() && (self.policy == Policy::Any || off.is_empty()) {
            format!("online: {} with {what}", names(&on))
        } else if on.is_empty() {
            format!("not online: no {what} on {}", names(&off))
        } else {
            format!(
                "{} of {} interfaces online; none yet on {}",
                on.len(),
                chosen.len(),
                names(&off)
            )
        }
    }
}

/// The shared board: interface tasks write, waiters subscribe.
#[derive(Clone)]
pub struct Board {
    tx: Arc<watch::Sender<Snapshot>>,
}

impl Board {
    /// A board with every interface offline.
    pub fn new(names: &[String]) -> Board {
        let snap = Snapshot {
            ifaces: names
                .iter()
                .map(|n| IfOnline {
                    name: n.clone(),
                    ..IfOnline::default()
                })
                .collect(),
            stopping: false,
        };
        Board {
            tx: Arc::new(watch::channel(snap).0),
        }
    }

    /// Set slot `slot`; waiters are woken only when something changed.
    pub fn set(&self, slot: usize, v4: bool, v6: bool) {
        self.tx.send_if_modified(|s| match s.ifaces.get_mut(slot) {
            Some(i) if (i.v4, i.v6) != (v4, v6) => {
                i.v4 = v4;
                i.v6 = v6;
                true
            }
            _ => false,
        });
    }

    /// Set slot `slot`'s SLAAC state.
    pub fn set_ra6(&self, slot: usize, ra6: bool) {
        self.tx.send_if_modified(|s| match s.ifaces.get_mut(slot) {
            Some(i) if i.ra6 != ra6 => {
                i.ra6 = ra6;
                true
            }
            _ => false,
        });
    }

    /// The daemon is stopping: every waiter answers now.
    pub fn set_stopping(&self) {
        self.tx.send_modify(|s| s.stopping = true);
    }

    /// The current state.
    pub fn snapshot(&self) -> Snapshot {
        self.tx.borrow().clone()
    }

    /// A receiver woken on each change.
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.tx.subscribe()
    }
}

/// How a wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Online; the description.
    Online(String),
    /// The deadline passed; the description of what is missing.
    TimedOut(String),
    /// The daemon is stopping.
    Stopping,
}

/// Wait until `q` holds, the deadline passes (`None`: never) or the daemon stops.
pub async fn wait(
    mut rx: watch::Receiver<Snapshot>,
    q: &Query,
    deadline: Option<tokio::time::Instant>,
) -> Outcome {
    loop {
        {
            let snap = rx.borrow_and_update();
            if q.is_online(&snap) {
                return Outcome::Online(q.describe(&snap));
            }
            if snap.stopping {
                return Outcome::Stopping;
            }
        }
        let changed = rx.changed();
        let timed_out = match deadline {
            Some(d) => tokio::time::timeout_at(d, changed).await.is_err(),
            None => changed.await.is_err(),
        };
        if timed_out {
            return Outcome::TimedOut(q.describe(&rx.borrow()));
        }
    }
}

/// The readiness message for systemd: READY=1 with a STATUS= saying why.
pub fn ready_message(outcome: &Outcome, timeout_secs: u64) -> String {
    match outcome {
        Outcome::Online(why) => format!("READY=1\nSTATUS={why}"),
        Outcome::TimedOut(why) => {
            format!("READY=1\nSTATUS={why} after {timeout_secs} s (online_timeout); still trying")
        }
        Outcome::Stopping => "READY=1\nSTATUS=stopping".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(list: &[(&str, bool, bool)]) -> Snapshot {
        Snapshot {
            ifaces: list
                .iter()
                .map(|(n, v4, v6)| IfOnline {
                    name: n.to_string(),
                    v4: *v4,
                    v6: *v6,
                    ra6: false,
                })
                .collect(),
            stopping: false,
        }
    }

    #[test]
    fn any_all_iface_and_family() {
        let any = Query::default();
        let all = Query {
            policy: Policy::All,
            ..Query::default()
        };
        let s = snap(&[("a", true, false), ("b", false, false)]);
        assert!(any.is_online(&s));
        assert!(!all.is_online(&s));
        assert_eq!(all.describe(&s), "1 of 2 interfaces online; none yet on b");
        // A v6 address alone is online, unless v4 is asked for.
        let s6 = snap(&[("a", false, true)]);
        assert!(any.is_online(&s6));
        let v4 = Query {
            family: Some(4),
            ..Query::default()
        };
        assert!(!v4.is_online(&s6));
        assert!(v4.describe(&s6).contains("no a DHCPv4 lease on a"));
        // One interface: any and all agree; an unknown one is never online.
        let only_b = Query {
            iface: Some("b".into()),
            ..Query::default()
        };
        assert!(!only_b.is_online(&s));
        let only_x = Query {
            iface: Some("x".into()),
            ..Query::default()
        };
        assert!(!only_x.is_online(&s));
        assert!(only_x.check(&s).unwrap_err().contains("does not manage"));
        let bad_family = Query {
            family: Some(5),
            ..Query::default()
        };
        assert!(bad_family.check(&s).is_err());
        // A SLAAC address counts as IPv6, not as a DHCPv4 lease.
        let mut slaac = snap(&[("a", false, false)]);
        slaac.ifaces[0].ra6 = true;
        assert!(any.is_online(&slaac));
        assert!(!v4.is_online(&slaac));
        let v6 = Query {
            family: Some(6),
            ..Query::default()
        };
        assert!(v6.is_online(&slaac));
        // Nothing managed: "all" of nothing is not online.
        assert!(!all.is_online(&snap(&[])));
        let none = snap(&[("a", false, false)]);
        assert!(!any.is_online(&none));
        assert!(any.describe(&none).starts_with("not online"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn ready_only_after_a_lease_or_at_the_timeout() {
        use std::time::Duration;
        let board = Board::new(&["c0".to_string(), "c1".to_string()]);
        let q = Query::default();
        // Nothing yet: the wait ends at the deadline with the reason.
        let t0 = tokio::time::Instant::now();
        let out = wait(board.subscribe(), &q, Some(t0 + Duration::from_millis(100))).await;
        assert!(t0.elapsed() >= Duration::from_millis(100));
        assert!(matches!(&out, Outcome::TimedOut(w) if w.contains("no a DHCPv4")));
        let msg = ready_message(&out, 30);
        assert!(msg.starts_with("READY=1\nSTATUS=not online"), "{msg}");
        assert!(msg.contains("after 30 s"), "{msg}");
        // A lease on the second interface arrives 200 ms in: online then, not before.
        let b = board.clone();
        let t0 = tokio::time::Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            b.set(0, false, false); // no change: no wakeup
            b.set(1, true, false);
        });
        let out = wait(board.subscribe(), &q, Some(t0 + Duration::from_secs(30))).await;
        assert_eq!(
            out,
            Outcome::Online("online: c1 with a DHCPv4 lease or global IPv6 address".into())
        );
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(200) && took < Duration::from_secs(5),
            "{took:?}"
        );
        // "all" still waits for c0; stopping ends the wait.
        let all = Query {
            policy: Policy::All,
            ..Query::default()
        };
        let b = board.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            b.set_stopping();
        });
        assert_eq!(wait(board.subscribe(), &all, None).await, Outcome::Stopping);
    }
}

//! Requests the server makes to other hosts (link previews, push gateways): one way to build
//! an HTTP client that never connects to loopback, private, link-local or otherwise non-public
//! addresses unless the config lists their network. Every address is checked after DNS
//! resolution and on every redirect; literal IP hosts never reach the resolver, so they are
//! checked separately.

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

const MAX_REDIRECTS: usize = 5;

/// Why a fetch was refused: the address is not one the previewer may reach.
#[derive(Debug)]
pub struct Blocked(String);

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not a public address", self.0)
    }
}

impl std::error::Error for Blocked {}

/// Decides which addresses the previewer may connect to.
#[derive(Clone)]
pub struct Guard {
    allowed: Arc<Vec<IpNet>>,
}

impl Guard {
    fn permits(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip)) || is_public(ip)
    }

    /// A literal IP host must pass here; a named host passes through the resolver.
    pub fn check_url(&self, url: &reqwest::Url) -> std::result::Result<(), Blocked> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Blocked(format!("{} (scheme)", url.scheme())));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(Blocked("a URL without a host".to_owned())),
        };
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Blocked(ip.to_string()))
        }
    }
}

impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| guard.permits(addr.ip()))
                .collect();
            if resolved.is_empty() {
                return Err(Box::new(Blocked(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(resolved.into_iter()) as Addrs)
        })
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local,
/// multicast, shared, documentation or otherwise special).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064)
        }
    }
}

/// A client for outbound requests guarded by the allow-list, and the guard for checking URLs
/// before a request (literal IP hosts).
pub fn client(
    allowed_networks: &[String],
    timeout: Duration,
    purpose: &str,
) -> Result<(reqwest::Client, Guard)> {
    let allowed = allowed_networks
        .iter()
        .map(|net| net.parse::<IpNet>().map_err(Error::internal))
        .collect::<Result<Vec<_>>>()?;
    let guard = Guard {
        allowed: Arc::new(allowed),
    };
    let redirect_guard = guard.clone();
    let client = reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(guard.clone()))
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(format!("Myelin/{} ({purpose})", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error("too many redirects");
            }
            match redirect_guard.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(blocked) => attempt.error(blocked),
            }
        }))
        .build()
        .map_err(Error::internal)?;
    Ok((client, guard))
}

/// The refused address, if a request failed because of the guard.
pub fn blocked_cause(err: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<Blocked>() {
            return Some(found.to_string());
        }
        source = cause.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["1.1.1.1", "93.184.216.34", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
        let guard = Guard {
            allowed: Arc::new(vec!["127.0.0.0/8".parse().expect("net")]),
        };
        assert!(guard.permits("127.0.0.1".parse().expect("ip")));
        assert!(!guard.permits("10.0.0.1".parse().expect("ip")));
    }
}

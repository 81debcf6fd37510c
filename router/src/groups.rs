//! Viewer groups: which group (region, POP) a viewer belongs to, from a
//! trusted request header or from its address by a CIDR map (longest prefix
//! wins). Pure code.

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName};

/// A CIDR block such as `10.0.0.0/8` or `2001:db8::/32`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not ADDRESS/PREFIX"))?;
        let network: IpAddr = addr.parse().map_err(|e| format!("{s:?}: {e}"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("{s:?}: prefix must be 0 to {max}"))?;
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    /// Whether `ip` is inside the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// How viewers are put in groups.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// CIDR blocks and their groups.
    pub cidrs: Vec<(Cidr, String)>,
    /// A header set by a trusted front (load balancer, CDN) naming the group.
    pub header: Option<HeaderName>,
}

impl Groups {
    /// The viewer's group, if any rule gives one.
    pub fn group_of<'a>(&'a self, headers: &'a HeaderMap, peer: Option<IpAddr>) -> Option<&'a str> {
        if let Some(name) = &self.header
            && let Some(value) = headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
            && !value.is_empty()
        {
            return Some(value);
        }
        let ip = peer?;
        self.cidrs
            .iter()
            .filter(|(cidr, _)| cidr.contains(ip))
            .max_by_key(|(cidr, _)| cidr.prefix)
            .map(|(_, group)| group.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_and_the_header_first() {
        let groups = Groups {
            cidrs: vec![
                ("127.0.0.0/8".parse().expect("cidr"), "local".into()),
                ("127.0.0.2/32".parse().expect("cidr"), "two".into()),
                ("2001:db8::/32".parse().expect("cidr"), "v6".into()),
            ],
            header: Some(HeaderName::from_static("x-viewer-group")),
        };
        let none = HeaderMap::new();
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        assert_eq!(groups.group_of(&none, ip("127.0.0.1")), Some("local"));
        assert_eq!(groups.group_of(&none, ip("127.0.0.2")), Some("two"));
        assert_eq!(groups.group_of(&none, ip("::ffff:127.0.0.2")), Some("two"));
        assert_eq!(groups.group_of(&none, ip("2001:db8::1")), Some("v6"));
        assert_eq!(groups.group_of(&none, ip("10.0.0.1")), None);
        let mut headers = HeaderMap::new();
        headers.insert("x-viewer-group", "eu".parse().expect("value"));
        assert_eq!(groups.group_of(&headers, ip("127.0.0.1")), Some("eu"));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!(
            "0.0.0.0/0"
                .parse::<Cidr>()
                .is_ok_and(|c| c.contains("1.2.3.4".parse().expect("ip")))
        );
    }
}

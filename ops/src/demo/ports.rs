//! Where the demo's processes listen: [`Layout`] turns `--base-port`, the
//! number of edges and the autoscaler's headroom into ports, and
//! [`check_free`] makes sure none of them is taken before anything starts.

use anyhow::bail;

/// Where everything listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    base: u16,
    edges: u16,
    extra: u16,
}

impl Layout {
    /// The layout for a base port, `edges` edges and `extra` autoscaled ones.
    pub fn new(base: u16, edges: u16, extra: u16) -> anyhow::Result<Layout> {
        let last = u32::from(base) + 1000 + u32::from(edges) + u32::from(extra);
        if base < 1024 || last > u32::from(u16::MAX) {
            bail!("--base-port {base} leaves no room: ports {base}..={last} must lie within 1024..=65535");
        }
        Ok(Layout { base, edges, extra })
    }

    /// The origin's port.
    pub fn origin(&self) -> u16 {
        self.base
    }

    /// The routers' ports.
    pub fn routers(&self) -> [u16; 2] {
        [self.base + 80, self.base + 81]
    }

    /// The dashboard's port.
    pub fn dashboard(&self) -> u16 {
        self.base + 90
    }

    /// Port of edge `i` (0-based; its id is `edge-<i+1>`).
    pub fn edge(&self, i: u16) -> u16 {
        self.base + 1001 + i
    }

    /// Port of the first edge the autoscaler adds.
    pub fn first_extra_edge(&self) -> u16 {
        self.edge(self.edges)
    }

    /// Every port the demo binds.
    pub fn ports(&self) -> Vec<u16> {
        let mut ports = vec![self.origin()];
        ports.extend(self.routers());
        ports.push(self.dashboard());
        ports.extend((0..self.edges + self.extra).map(|i| self.edge(i)));
        ports
    }
}

/// Checks that every port is free on loopback.
pub(super) fn check_free(layout: &Layout) -> anyhow::Result<()> {
    for port in layout.ports() {
        if let Err(error) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            bail!(
                "port {port} is not free ({error}); is another demo running? Try --base-port {}",
                u32::from(layout.base) + 100
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_layout() {
        let layout = Layout::new(8000, 3, 0).expect("layout");
        assert_eq!(layout.origin(), 8000);
        assert_eq!(layout.routers(), [8080, 8081]);
        assert_eq!(layout.dashboard(), 8090);
        assert_eq!((layout.edge(0), layout.edge(2)), (9001, 9003));
        assert_eq!(layout.ports(), vec![8000, 8080, 8081, 8090, 9001, 9002, 9003]);
        let moved = Layout::new(18000, 3, 2).expect("layout");
        assert_eq!(moved.first_extra_edge(), 19004);
        assert_eq!(moved.ports().len(), 9);
        assert!(Layout::new(65000, 3, 0).is_err());
        assert!(Layout::new(80, 3, 0).is_err());
    }
}

//! TLS for every server and client of the fleet, with rustls.
//!
//! A server given `--tls-cert FILE --tls-key FILE` (PEM: the certificate
//! chain, leaf first, and its private key) serves HTTPS: ALPN offers `h2`
//! and `http/1.1`, and the certificate is read again whenever either file
//! changes (checked every [`RELOAD_CHECK`]) or the process gets SIGHUP. A
//! handshake in progress or a connection already open keeps the certificate
//! it started with; a new pair that does not load (unreadable, not PEM, a
//! key that does not match the certificate) is logged and the old one kept,
//! so a half-written rotation never takes a server down.
//!
//! With `--tls-client-ca FILE` the server also asks every client for a
//! certificate signed by a CA in FILE (mutual TLS). A client without one is
//! still served, as viewers have none; the fleet endpoints then require one
//! whose name is the edge calling ([`PeerCertificate`]).
//!
//! Clients ([`ClientTls`]) verify servers against the system's roots plus
//! the CAs of `--tls-ca-file`, and present `--tls-client-cert`/`--tls-client-key`
//! when a fleet uses mutual TLS.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

/// How often the certificate and key files are checked for a change.
pub const RELOAD_CHECK: Duration = Duration::from_secs(2);

/// The `[tls]` table of every server, for both sides of its connections:
/// `--tls-cert`, `--tls-key` and `--tls-client-ca` for what it serves,
/// `--ca-file`, `--tls-client-cert` and `--tls-client-key` for what it calls.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct TlsArgs {
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long = "tls-cert", env = "HLSCDN_TLS_CERT", value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long = "tls-key", env = "HLSCDN_TLS_KEY", value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Ask clients for a certificate signed by a CA in FILE (PEM): mutual TLS for fleet calls.
    #[arg(long = "tls-client-ca", env = "HLSCDN_TLS_CLIENT_CA", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
    /// Trust the CAs in FILE (PEM) besides the system's roots, for the HTTPS this process calls.
    #[arg(
        long = "tls-ca-file",
        alias = "ca-file",
        env = "HLSCDN_TLS_CA_FILE",
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,
    /// Certificate (PEM) this process presents to servers that ask for one (mutual TLS); needs --tls-client-key.
    #[arg(long = "tls-client-cert", env = "HLSCDN_TLS_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-client-cert.
    #[arg(long = "tls-client-key", env = "HLSCDN_TLS_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<PathBuf>,
}

/// `[tls]` as a process runs with it (see [`TlsArgs`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain served (PEM).
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub key: Option<PathBuf>,
    /// CAs of client certificates (PEM); none: clients are not asked for one.
    pub client_ca: Option<PathBuf>,
    /// CAs trusted besides the system's, when calling.
    pub ca_file: Option<PathBuf>,
    /// Certificate presented when calling (PEM).
    pub client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub client_key: Option<PathBuf>,
}

impl TlsConfig {
    /// The server side of TLS, loaded: `None` when TLS is off. An error
    /// names the key or file at fault (one of the certificate and the key
    /// without the other, a client CA without them, a file that does not load).
    pub fn server(&self) -> Result<Option<ServerTls>, String> {
        match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => ServerTls::load(cert, key, self.client_ca.as_deref()).map(Some),
            (Some(_), None) => Err("`tls.cert` (--tls-cert) is given without `tls.key` (--tls-key)".into()),
            (None, Some(_)) => Err("`tls.key` (--tls-key) is given without `tls.cert` (--tls-cert)".into()),
            (None, None) if self.client_ca.is_some() => Err(
                "`tls.client_ca` (--tls-client-ca) needs `tls.cert` and `tls.key`: client certificates are asked for over TLS".into(),
            ),
            (None, None) => Ok(None),
        }
    }

    /// The client side, loaded.
    pub fn client(&self) -> Result<ClientTls, String> {
        ClientTls::load(
            self.ca_file.as_deref(),
            self.client_cert.as_deref(),
            self.client_key.as_deref(),
        )
    }

    /// The scheme of this server's own URLs.
    pub fn scheme(&self) -> &'static str {
        if self.cert.is_some() { "https" } else { "http" }
    }
}

/// The crypto provider of every TLS connection here (aws-lc-rs), named
/// rather than taken from the process default, which is ambiguous when
/// dependencies enable more than one.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A server's TLS: the rustls configuration, whose certificate is read
/// again when its files change.
#[derive(Debug, Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
    certificate: Arc<Reloading>,
}

impl ServerTls {
    /// Loads the certificate chain and key (and the client CAs); the message
    /// names the file at fault.
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, String> {
        let provider = provider();
        let current = certified_key(cert, key, &provider)?;
        let certificate = Arc::new(Reloading {
            cert: cert.to_owned(),
            key: key.to_owned(),
            provider: provider.clone(),
            current: RwLock::new(Arc::new(current)),
            stamp: RwLock::new(stamp(cert, key)),
        });
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in certificates(path)? {
                    roots
                        .add(ca)
                        .map_err(|e| format!("{}: not a CA certificate: {e}", path.display()))?;
                }
                let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_cert_resolver(certificate.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            config: Arc::new(config),
            certificate,
        })
    }

    /// The acceptor for new connections.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.clone())
    }

    /// Reads the certificate again if its files changed since the last read
    /// (or always, when `force`). Returns whether a new one is in use.
    pub fn reload(&self, force: bool) -> bool {
        self.certificate.reload(force)
    }

    /// Reloads on every SIGHUP and whenever the files change, until dropped.
    pub async fn watch(self) {
        let mut interval = tokio::time::interval(RELOAD_CHECK);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        #[cfg(unix)]
        let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        loop {
            #[cfg(unix)]
            let hup = async {
                match hangup.as_mut() {
                    Some(signal) => signal.recv().await,
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let hup = std::future::pending::<Option<()>>();
            tokio::select! {
                _ = interval.tick() => { self.reload(false); }
                _ = hup => {
                    tracing::info!("SIGHUP: reading the TLS certificate again");
                    self.reload(true);
                }
            }
        }
    }
}

/// The serving certificate, swapped when its files change.
#[derive(Debug)]
struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// Modification times and sizes of the two files at the last read.
    stamp: RwLock<Stamp>,
}

type Stamp = Option<[(SystemTime, u64); 2]>;

/// The modification time and size of each file (`None` if one cannot be read).
fn stamp(cert: &Path, key: &Path) -> Stamp {
    let one = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    Some([one(cert)?, one(key)?])
}

impl Reloading {
    fn reload(&self, force: bool) -> bool {
        let now = stamp(&self.cert, &self.key);
        let changed = now != *self.stamp.read().unwrap_or_else(|e| e.into_inner());
        if !(force || changed && now.is_some()) {
            return false;
        }
        *self.stamp.write().unwrap_or_else(|e| e.into_inner()) = now;
        match certified_key(&self.cert, &self.key, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                tracing::info!(cert = %self.cert.display(), "TLS certificate loaded; new connections use it");
                true
            }
            Err(error) => {
                tracing::error!(%error, "the new TLS certificate does not load; still serving the previous one");
                false
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// Every certificate in a PEM file; an error names the file when there is none.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

/// The chain of `cert` with the key of `key`, checked to belong together.
fn certified_key(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = certificates(cert)?;
    let pem = std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| format!("{}: no PEM private key in it: {e}", key.display()))?;
    let certified = CertifiedKey::from_der(chain, der, provider).map_err(|e| {
        format!(
            "{} and {}: not a certificate and its key: {e}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(certified)
}

/// The certificate a client presented and the handshake verified against
/// `--tls-client-ca` (mutual TLS): in a request's extensions only when
/// there was one, for the handlers of fleet calls to check who calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub CertificateDer<'static>);

impl PeerCertificate {
    /// Whether the certificate is for `name` (a DNS name among its subject
    /// alternative names, as an edge id or a router's host name is).
    pub fn is_for(&self, name: &str) -> bool {
        let Ok(subject) = rustls::pki_types::ServerName::try_from(name) else {
            return false;
        };
        webpki::EndEntityCert::try_from(&self.0)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&subject).is_ok())
    }
}

/// How a process's HTTP clients verify servers and identify themselves.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    roots: Vec<reqwest::Certificate>,
    identity: Option<reqwest::Identity>,
}

impl ClientTls {
    /// Reads the files; the message names the one at fault.
    pub fn load(ca_file: Option<&Path>, cert: Option<&Path>, key: Option<&Path>) -> Result<Self, String> {
        let roots = match ca_file {
            None => Vec::new(),
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
                let roots = reqwest::Certificate::from_pem_bundle(&pem)
                    .map_err(|e| format!("{}: not PEM certificates: {e}", path.display()))?;
                if roots.is_empty() {
                    return Err(format!("{}: no PEM certificate in it", path.display()));
                }
                roots
            }
        };
        let identity = match (cert, key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                // Checked here so that a bad pair fails at start, naming the files.
                certified_key(cert, key, &provider())?;
                let mut pem = std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
                pem.push(b'\n');
                pem.extend(std::fs::read(key).map_err(|e| format!("{}: {e}", key.display()))?);
                Some(
                    reqwest::Identity::from_pem(&pem)
                        .map_err(|e| format!("{} and {}: {e}", cert.display(), key.display()))?,
                )
            }
            (Some(_), None) => {
                return Err("`tls.client_cert` (--tls-client-cert) is given without `tls.client_key` (--tls-client-key)".into());
            }
            (None, Some(_)) => {
                return Err("`tls.client_key` (--tls-client-key) is given without `tls.client_cert` (--tls-client-cert)".into());
            }
        };
        Ok(ClientTls { roots, identity })
    }

    /// `builder`, verifying with the system roots and these CAs, and
    /// presenting the client certificate when there is one. Plain `http://`
    /// requests are unaffected.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        let builder = builder.tls_certs_merge(self.roots.iter().cloned());
        match &self.identity {
            Some(identity) => builder.identity(identity.clone()),
            None => builder,
        }
    }
}

/// A certificate authority made on the spot, with certificates it issues:
/// for `hlscdn demo --tls` and for tests, never for production (its key
/// lives in memory and in the files it is written to).
pub struct LocalCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa").finish_non_exhaustive()
    }
}

/// A certificate chain and its key, in PEM (`Debug` shows no key).
#[derive(Clone)]
pub struct IssuedPem {
    /// The leaf certificate, then the CA's.
    pub chain: String,
    /// The leaf's private key.
    pub key: String,
}

impl std::fmt::Debug for IssuedPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPem").finish_non_exhaustive()
    }
}

impl LocalCa {
    /// A new CA named `name`, with a new key (ECDSA P-256).
    pub fn new(name: &str) -> Result<Self, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| format!("CA key: {e}"))?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("CA certificate: {e}"))?;
        Ok(LocalCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA certificate (PEM): what clients must trust.
    pub fn pem(&self) -> &str {
        &self.pem
    }

    /// A certificate for `names` (host names and IP addresses), good for
    /// serving and for calling as a client (mutual TLS, where the first
    /// name is the caller's id), with a new key.
    pub fn issue(&self, names: &[&str]) -> Result<IssuedPem, String> {
        let key = rcgen::KeyPair::generate().map_err(|e| format!("key: {e}"))?;
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(sans).map_err(|e| format!("names {names:?}: {e}"))?;
        if let Some(first) = names.first() {
            params.distinguished_name.push(rcgen::DnType::CommonName, *first);
        }
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| format!("certificate for {names:?}: {e}"))?;
        Ok(IssuedPem {
            chain: format!("{}{}", cert.pem(), self.pem),
            key: key.serialize_pem(),
        })
    }

    /// [`LocalCa::issue`], written to `dir/<file>.pem` and `dir/<file>.key`
    /// (the key readable by its owner only); returns the two paths.
    pub fn write(&self, dir: &Path, file: &str, names: &[&str]) -> std::io::Result<(PathBuf, PathBuf)> {
        let issued = self.issue(names).map_err(std::io::Error::other)?;
        let cert = dir.join(format!("{file}.pem"));
        let key = dir.join(format!("{file}.key"));
        std::fs::write(&cert, issued.chain)?;
        write_private(&key, issued.key.as_bytes())?;
        Ok((cert, key))
    }
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, ca: &LocalCa, file: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        ca.write(dir, file, names).expect("write certificate")
    }

    fn serving_names(tls: &ServerTls) -> Vec<u8> {
        let key = tls.certificate.current.read().expect("lock").clone();
        key.cert[0].to_vec()
    }

    #[test]
    fn a_pair_loads_and_a_mismatched_or_missing_one_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = LocalCa::new("test CA").expect("ca");
        let (cert, key) = write_pair(dir.path(), &ca, "a", &["localhost", "127.0.0.1"]);
        let (_, other_key) = write_pair(dir.path(), &ca, "b", &["localhost"]);
        assert!(ServerTls::load(&cert, &key, None).is_ok());

        let error = ServerTls::load(&cert, &other_key, None).expect_err("mismatched");
        assert!(error.contains("not a certificate and its key"), "{error}");
        let error = ServerTls::load(&dir.path().join("nope.pem"), &key, None).expect_err("missing");
        assert!(error.contains("nope.pem"), "{error}");
        std::fs::write(dir.path().join("empty.pem"), "not pem\n").expect("write");
        let error = ServerTls::load(&dir.path().join("empty.pem"), &key, None).expect_err("empty");
        assert!(error.contains("no PEM certificate"), "{error}");

        let config = TlsConfig {
            cert: Some(cert.clone()),
            ..TlsConfig::default()
        };
        assert!(config.server().expect_err("half").contains("--tls-key"));
        let config = TlsConfig {
            client_ca: Some(cert),
            ..TlsConfig::default()
        };
        assert!(config.server().expect_err("ca alone").contains("--tls-client-ca"));
        assert!(TlsConfig::default().server().expect("off").is_none());
    }

    #[test]
    fn a_changed_certificate_is_picked_up_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = LocalCa::new("test CA").expect("ca");
        let (cert, key) = write_pair(dir.path(), &ca, "serving", &["localhost"]);
        let tls = ServerTls::load(&cert, &key, None).expect("load");
        let first = serving_names(&tls);
        assert!(!tls.reload(false), "nothing changed");

        // A rotation: both files replaced.
        let next = ca.issue(&["localhost"]).expect("issue");
        std::fs::write(&cert, &next.chain).expect("write");
        std::fs::write(&key, &next.key).expect("write");
        assert!(tls.reload(true));
        let second = serving_names(&tls);
        assert_ne!(first, second, "the new certificate serves");

        // Half written: a key that does not match. The old pair keeps serving.
        let other = ca.issue(&["localhost"]).expect("issue");
        std::fs::write(&key, &other.key).expect("write");
        assert!(!tls.reload(true));
        assert_eq!(serving_names(&tls), second);
    }

    #[test]
    fn a_peer_certificate_is_for_its_names_only() {
        let ca = LocalCa::new("test CA").expect("ca");
        let issued = ca.issue(&["edge-1"]).expect("issue");
        let der = CertificateDer::pem_slice_iter(issued.chain.as_bytes())
            .next()
            .expect("one")
            .expect("pem");
        let peer = PeerCertificate(der);
        assert!(peer.is_for("edge-1"));
        assert!(!peer.is_for("edge-2"));
        assert!(!peer.is_for("not a name"));
    }
}

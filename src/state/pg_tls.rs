//! TLS to the PostgreSQL state, with libpq's semantics: `sslmode` (`disable`, `allow`,
//! `prefer` — the default —, `require`, `verify-ca`, `verify-full`), `sslrootcert`, `sslcert`
//! and `sslkey`, from the URL's query or libpq's environment variables (`PGSSLMODE`,
//! `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY`), with libpq's defaults under
//! `~/.postgresql/`.
//!
//! rust-postgres knows `sslmode` up to `require` and checks nothing itself: sealer takes the
//! SSL parameters out of the URL, tells rust-postgres whether to ask for TLS, and gives the
//! handshake a rustls verifier doing what libpq's mode does:
//! - `allow`, `prefer`, `require`: no check of the server's certificate — unless a root
//!   certificate file exists (`sslrootcert`, or `~/.postgresql/root.crt`), which libpq then
//!   checks the chain against, as `verify-ca` does;
//! - `verify-ca`: the chain up to a CA of the root file, whatever name the certificate is for;
//! - `verify-full`: that, and the certificate is for the host of the URL (DNS name or IP);
//!   `sslrootcert=system` checks against the system's roots and requires `verify-full`.
//!
//! Unix-socket connections never use TLS (libpq ignores `sslmode` there too).

use crate::Error;
use percent_encoding::percent_decode_str;
use postgres::tls::{MakeTlsConnect, TlsConnect};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The most a certificate or key file may hold; anything longer is not one.
const PEM_FILE_MAX: u64 = 1 << 20;

/// libpq's modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first; TLS when the server refuses plain.
    Allow,
    /// TLS when the server offers it, plain otherwise (or when TLS fails).
    Prefer,
    /// TLS or nothing.
    Require,
    /// TLS, and the server's certificate chains up to a trusted CA.
    VerifyCa,
    /// That, and the certificate is for the host connected to.
    VerifyFull,
}

impl SslMode {
    const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(value: &str) -> Option<SslMode> {
        SslMode::ALL.into_iter().find(|m| m.name() == value)
    }

    fn verifies(self) -> bool {
        matches!(self, SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

/// The SSL parameters of a URL's query, percent-decoded, as written.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SslParams {
    pub(crate) mode: Option<String>,
    pub(crate) root_cert: Option<String>,
    pub(crate) cert: Option<String>,
    pub(crate) key: Option<String>,
}

/// `url` without its SSL parameters (what rust-postgres parses), and those parameters.
pub(crate) fn split_url(url: &str) -> (String, SslParams) {
    let mut params = SslParams::default();
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), params);
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = || Some(percent_decode_str(value).decode_utf8_lossy().into_owned());
        match key {
            "sslmode" => params.mode = value(),
            "sslrootcert" => params.root_cert = value(),
            "sslcert" => params.cert = value(),
            "sslkey" => params.key = value(),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (url, params)
}

/// Where the server's certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    /// No root file: not checked (only in the modes that do not verify).
    Unchecked,
    /// The CAs of this PEM file.
    File(PathBuf),
    /// The system's trusted roots (`sslrootcert=system`).
    System,
}

/// A client certificate and its key, both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientCert {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// The TLS settings of one connection, resolved from the URL, the environment and libpq's
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsSettings {
    pub(crate) mode: SslMode,
    pub(crate) roots: Roots,
    pub(crate) client: Option<ClientCert>,
}

/// Resolves the settings as libpq does: a URL parameter wins over its environment variable
/// (`env`), which wins over the default under `home`/.postgresql; `exists` says whether a
/// file is there. Over unix sockets only (`unix_only`), no file is looked for: TLS is not
/// used there. The error is a message and a hint.
pub(crate) fn resolve(
    params: &SslParams,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
    exists: &dyn Fn(&Path) -> bool,
    unix_only: bool,
) -> std::result::Result<TlsSettings, (String, String)> {
    let given = |param: &Option<String>, var: &str| param.clone().or_else(|| env(var));
    let default_file = |name: &str| home.map(|h| h.join(".postgresql").join(name));
    let root_cert = given(&params.root_cert, "PGSSLROOTCERT");
    let system = root_cert.as_deref() == Some("system");
    let mode = match given(&params.mode, "PGSSLMODE") {
        Some(value) => SslMode::parse(&value).ok_or_else(|| {
            (
                format!("sslmode={value} is not a mode PostgreSQL knows"),
                "use one of disable, allow, prefer, require, verify-ca, verify-full".to_string(),
            )
        })?,
        // libpq: the system's roots mean a check of the name too.
        None if system => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if mode == SslMode::Disable || unix_only {
        return Ok(TlsSettings {
            mode,
            roots: Roots::Unchecked,
            client: None,
        });
    }
    let roots = if system {
        if mode != SslMode::VerifyFull {
            return Err((
                format!(
                    "sslmode={} may not be used with sslrootcert=system",
                    mode.name()
                ),
                "use sslmode=verify-full: the system's roots trust many CAs, the name is what ties the certificate to this server".to_string(),
            ));
        }
        Roots::System
    } else {
        match root_cert
            .map(PathBuf::from)
            .or_else(|| default_file("root.crt"))
        {
            Some(path) if exists(&path) => Roots::File(path),
            Some(path) if mode.verifies() => {
                return Err((
                    format!(
                        "sslmode={}: root certificate file {} does not exist",
                        mode.name(),
                        path.display()
                    ),
                    "give the CA that signed the server's certificate with sslrootcert=PATH (or PGSSLROOTCERT), use the system's roots with sslrootcert=system, or use sslmode=require, which does not check the certificate".to_string(),
                ));
            }
            None if mode.verifies() => {
                return Err((
                    format!(
                        "sslmode={} needs a root certificate file, and there is no home directory for ~/.postgresql/root.crt",
                        mode.name()
                    ),
                    "give it with sslrootcert=PATH (or PGSSLROOTCERT)".to_string(),
                ));
            }
            _ => Roots::Unchecked,
        }
    };
    let explicit_cert = given(&params.cert, "PGSSLCERT");
    let client = match explicit_cert
        .clone()
        .map(PathBuf::from)
        .or_else(|| default_file("postgresql.crt"))
    {
        Some(cert) if exists(&cert) => {
            let key = given(&params.key, "PGSSLKEY")
                .map(PathBuf::from)
                .or_else(|| default_file("postgresql.key"))
                .unwrap_or_else(|| cert.with_extension("key"));
            Some(ClientCert { cert, key })
        }
        // A certificate asked for by name and missing is a mistake worth saying (libpq
        // would silently connect without one); the default one is optional.
        Some(cert) if explicit_cert.is_some() => {
            return Err((
                format!("client certificate file {} does not exist", cert.display()),
                "give the certificate's path with sslcert=PATH (or PGSSLCERT), its key with sslkey=PATH".to_string(),
            ));
        }
        _ => None,
    };
    Ok(TlsSettings {
        mode,
        roots,
        client,
    })
}

/// The settings of `params` in this process's environment.
pub(crate) fn resolve_here(
    params: &SslParams,
    unix_only: bool,
) -> std::result::Result<TlsSettings, (String, String)> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    resolve(
        params,
        &|var| std::env::var(var).ok(),
        home.as_deref(),
        &|path| path.is_file(),
        unix_only,
    )
}

/// The rust-postgres modes to connect with, in turn: the next is tried when the one before
/// failed in a way libpq retries (see [`Attempt`]). All-unix-socket hosts: plain only.
pub(crate) fn attempts(mode: SslMode, all_unix: bool) -> Vec<Attempt> {
    use postgres::config::SslMode as Pg;
    if all_unix {
        return vec![Attempt::Only(Pg::Disable)];
    }
    match mode {
        SslMode::Disable => vec![Attempt::Only(Pg::Disable)],
        SslMode::Allow => vec![
            Attempt::ThenIfRefused(Pg::Disable),
            Attempt::Only(Pg::Require),
        ],
        SslMode::Prefer => vec![
            Attempt::ThenIfTlsFailed(Pg::Prefer),
            Attempt::Only(Pg::Disable),
        ],
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            vec![Attempt::Only(Pg::Require)]
        }
    }
}

/// One connection attempt, and when the next one is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// The last one.
    Only(postgres::config::SslMode),
    /// `allow`: plain, then TLS when the server refused the plain connection.
    ThenIfRefused(postgres::config::SslMode),
    /// `prefer`: TLS if offered, then plain when anything failed after TLS began (the
    /// handshake, or the server refusing the session over TLS).
    ThenIfTlsFailed(postgres::config::SslMode),
}

impl Attempt {
    pub(crate) fn mode(self) -> postgres::config::SslMode {
        match self {
            Attempt::Only(m) | Attempt::ThenIfRefused(m) | Attempt::ThenIfTlsFailed(m) => m,
        }
    }

    /// Whether to try the next attempt after this one failed with `e`, TLS having begun
    /// (`tls_began`) or not.
    pub(crate) fn retry(self, e: &postgres::Error, tls_began: bool) -> bool {
        match self {
            Attempt::Only(_) => false,
            Attempt::ThenIfRefused(_) => e.as_db_error().is_some(),
            Attempt::ThenIfTlsFailed(_) => tls_began,
        }
    }
}

/// The rustls configuration of `settings`: its verifier, its client certificate, and ALPN
/// `postgresql` (which PostgreSQL 17 requires of direct TLS negotiation).
pub(crate) fn client_config(
    settings: &TlsSettings,
) -> std::result::Result<rustls::ClientConfig, (String, String)> {
    // The provider reqwest's rustls is built with: one provider in the binary.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match &settings.roots {
        Roots::Unchecked => Arc::new(NoCertificateCheck(Arc::clone(&provider))),
        Roots::System => Arc::new(
            rustls_platform_verifier::Verifier::new(Arc::clone(&provider)).map_err(|e| {
                (
                    format!("cannot load the system's trusted roots: {e}"),
                    "install the ca-certificates package, or give the CA with sslrootcert=PATH"
                        .to_string(),
                )
            })?,
        ),
        Roots::File(path) => {
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(root_store(path)?),
                Arc::clone(&provider),
            )
            .build()
            .map_err(|e| {
                (
                    format!("root certificate file {}: {e}", path.display()),
                    "give a PEM file of CA certificates".to_string(),
                )
            })?;
            if settings.mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| (format!("TLS setup: {e}"), String::new()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match &settings.client {
        None => builder.with_no_client_auth(),
        Some(client) => {
            let (chain, key) = client_identity(client)?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                (
                    format!(
                        "client certificate {} and key {}: {e}",
                        client.cert.display(),
                        client.key.display()
                    ),
                    "give the key that belongs to the certificate (sslkey=PATH)".to_string(),
                )
            })?
        }
    };
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// A file read whole, up to [`PEM_FILE_MAX`].
fn read_bounded(path: &Path, what: &str) -> std::result::Result<Vec<u8>, (String, String)> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(PEM_FILE_MAX + 1).read_to_end(&mut bytes))
        .map_err(|e| {
            (
                format!("cannot read {what} {}: {e}", path.display()),
                "check the path and its permissions".to_string(),
            )
        })?;
    if bytes.len() as u64 > PEM_FILE_MAX {
        return Err((
            format!(
                "{what} {} is larger than {} bytes, too large to be one",
                path.display(),
                PEM_FILE_MAX
            ),
            "give a PEM file".to_string(),
        ));
    }
    Ok(bytes)
}

fn root_store(path: &Path) -> std::result::Result<rustls::RootCertStore, (String, String)> {
    let what = "root certificate file";
    let bytes = read_bounded(path, what)?;
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| {
            (
                format!("{what} {}: {e}", path.display()),
                "give a PEM file of CA certificates".to_string(),
            )
        })?;
        store.add(cert).map_err(|e| {
            (
                format!("{what} {}: {e}", path.display()),
                "give a PEM file of CA certificates".to_string(),
            )
        })?;
    }
    if store.is_empty() {
        return Err((
            format!("{what} {} holds no PEM certificate", path.display()),
            "give a PEM file of CA certificates (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(store)
}

type Identity = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn client_identity(client: &ClientCert) -> std::result::Result<Identity, (String, String)> {
    let bytes = read_bounded(&client.cert, "client certificate file")?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| {
            (
                format!("client certificate file {}: {e}", client.cert.display()),
                "give a PEM certificate".to_string(),
            )
        })?;
    if chain.is_empty() {
        return Err((
            format!(
                "client certificate file {} holds no PEM certificate",
                client.cert.display()
            ),
            "give a PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    if !client.key.is_file() {
        return Err((
            format!(
                "client certificate {} is there, but not its private key file {}",
                client.cert.display(),
                client.key.display()
            ),
            "give the key with sslkey=PATH (or PGSSLKEY)".to_string(),
        ));
    }
    key_permissions(&client.key)?;
    let bytes = read_bounded(&client.key, "private key file")?;
    let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let encrypted = String::from_utf8_lossy(&bytes).contains("ENCRYPTED");
        (
            format!("private key file {}: {e}", client.key.display()),
            if encrypted {
                "the key is encrypted, which sealer cannot read: decrypt it (openssl pkey -in KEY -out KEY.plain) and keep it 0600".to_string()
            } else {
                "give an unencrypted PEM key (PKCS#8, PKCS#1 or SEC1)".to_string()
            },
        )
    })?;
    Ok((chain, key))
}

/// libpq's rule for the client key: no access for others than its owner (0600), or read
/// for the group when root owns it (0640).
fn key_permissions(path: &Path) -> std::result::Result<(), (String, String)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        (
            format!("cannot read private key file {}: {e}", path.display()),
            String::new(),
        )
    })?;
    let allowed = if meta.uid() == 0 { 0o640 } else { 0o600 };
    if meta.mode() & 0o777 & !allowed != 0 {
        return Err((
            format!(
                "private key file {} has permissions {:o}: others than its owner may read it",
                path.display(),
                meta.mode() & 0o777
            ),
            format!(
                "chmod {:o} {}",
                if meta.uid() == 0 { 0o640 } else { 0o600 },
                path.display()
            ),
        ));
    }
    Ok(())
}

/// `allow`, `prefer` and `require` without a root file: the certificate is not checked
/// (libpq's behaviour: encryption against eavesdroppers, not against a man in the middle).
/// The handshake's signatures still are: they prove the peer holds the certificate's key.
#[derive(Debug)]
struct NoCertificateCheck(Arc<CryptoProvider>);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca` (and the weaker modes when a root file exists): the whole of the WebPKI check
/// but the name. webpki checks the chain before the name, so a name mismatch means the
/// chain was good.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The rustls connector of rust-postgres, noting whether a TLS handshake began (the server
/// accepted TLS): `prefer` retries without TLS only then.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: tokio_postgres_rustls::MakeRustlsConnect,
    began: Arc<AtomicBool>,
}

impl Connector {
    pub(crate) fn new(config: rustls::ClientConfig) -> Connector {
        Connector {
            inner: tokio_postgres_rustls::MakeRustlsConnect::new(config),
            began: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether a handshake began since the last call.
    pub(crate) fn take_began(&self) -> bool {
        self.began.swap(false, Ordering::SeqCst)
    }
}

impl<S> MakeTlsConnect<S> for Connector
where
    tokio_postgres_rustls::MakeRustlsConnect: MakeTlsConnect<S>,
{
    type Stream = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect =
        Tracked<<tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <tokio_postgres_rustls::MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(
        &mut self,
        domain: &str,
    ) -> std::result::Result<Self::TlsConnect, Self::Error> {
        Ok(Tracked {
            inner: self.inner.make_tls_connect(domain)?,
            began: Arc::clone(&self.began),
        })
    }
}

/// One connection's TLS connector, noting that the handshake began.
pub(crate) struct Tracked<T> {
    inner: T,
    began: Arc<AtomicBool>,
}

impl<S, T: TlsConnect<S>> TlsConnect<S> for Tracked<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = T::Future;

    fn connect(self, stream: S) -> Self::Future {
        self.began.store(true, Ordering::SeqCst);
        self.inner.connect(stream)
    }
}

/// The rustls error under a rust-postgres one, if TLS failed.
fn rustls_error(e: &postgres::Error) -> Option<&rustls::Error> {
    let source = std::error::Error::source(e)?;
    let io = source.downcast_ref::<std::io::Error>()?;
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A name as webpki lists a certificate's names (`DnsName("db")`, `IpAddress(10.0.0.1)`),
/// as a person writes it.
pub(crate) fn plain_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|n| n.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|n| n.strip_suffix(')'))
        })
        .unwrap_or(presented)
}

/// A failed connection's error when TLS explains it, with what to do; `None` when it is not
/// about TLS (the caller reports it as any connection failure).
pub(crate) fn tls_error(
    location: &str,
    settings: &TlsSettings,
    e: &postgres::Error,
) -> Option<Error> {
    let mode = settings.mode.name();
    let roots = match &settings.roots {
        Roots::File(path) => path.display().to_string(),
        Roots::System => "the system's trusted roots".to_string(),
        Roots::Unchecked => "no root certificate".to_string(),
    };
    let cannot = format!("state database {location}: cannot connect");
    if let Some(tls) = rustls_error(e) {
        let error = match tls {
            rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
                expected,
                presented,
            }) => {
                let names: Vec<&str> = presented.iter().map(|n| plain_name(n)).collect();
                let expected = match expected {
                    ServerName::DnsName(name) => name.as_ref().to_string(),
                    ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
                    other => format!("{other:?}"),
                };
                Error::msg(format!(
                    "{cannot}: the server's certificate is for {}, not {expected} (sslmode={mode})",
                    if names.is_empty() { "no name".to_string() } else { names.join(", ") }
                ))
                .hint(format!(
                    "connect with a name the certificate is for{}, or use sslmode=verify-ca to check the CA only",
                    names.first().map(|n| format!(" ({n})")).unwrap_or_default()
                ))
            }
            rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => Error::msg(
                format!("{cannot}: the server's certificate is not for this host name (sslmode={mode})"),
            )
            .hint("connect with a name the certificate is for, or use sslmode=verify-ca to check the CA only"),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => Error::msg(
                format!("{cannot}: the server's certificate is not signed by a CA of {roots} (sslmode={mode})"),
            )
            .hint("give the CA that signed the server's certificate with sslrootcert=PATH (or PGSSLROOTCERT)"),
            rustls::Error::InvalidCertificate(why) => Error::msg(format!(
                "{cannot}: the server's certificate is refused: {why} (sslmode={mode}, roots: {roots})"
            ))
            .hint("renew the server's certificate, or check the CA given with sslrootcert"),
            other => Error::msg(format!("{cannot}: the TLS handshake failed: {other}"))
                .hint("check the server's ssl settings (ssl_min_protocol_version, its certificate and key)"),
        };
        return Some(error);
    }
    // rust-postgres' own words, under its "error performing TLS handshake".
    let cause = std::error::Error::source(e).map(ToString::to_string);
    if cause.as_deref() == Some("server does not support TLS") {
        return Some(
            Error::msg(format!(
                "{cannot}: the server does not offer TLS, and sslmode={mode} requires it"
            ))
            .hint("turn TLS on in the server (ssl = on, with ssl_cert_file and ssl_key_file), or connect with sslmode=prefer"),
        );
    }
    if let Some(db) = e.as_db_error()
        && db.code().code() == "28000"
        && db.message().contains("no encryption")
    {
        return Some(
            Error::msg(format!(
                "{cannot}: {} ({})",
                db.message(),
                db.code().code()
            ))
            .hint(format!(
                "the server accepts this connection over TLS only (hostssl in pg_hba.conf): connect with sslmode=require or verify-full{}",
                if settings.mode == SslMode::Disable {
                    " instead of sslmode=disable (URL or PGSSLMODE)"
                } else {
                    ""
                }
            )),
        );
    }
    None
}

/// The settings' error as ours, naming the URL.
pub(crate) fn settings_error(location: &str, (message, hint): (String, String)) -> Error {
    let error = Error::msg(format!("state database {location}: {message}"));
    if hint.is_empty() {
        error
    } else {
        error.hint(hint)
    }
}

/// Whether every host of `config` is a unix socket directory.
pub(crate) fn all_unix(config: &postgres::Config) -> bool {
    config
        .get_hosts()
        .iter()
        .all(|h| matches!(h, postgres::config::Host::Unix(_)))
}

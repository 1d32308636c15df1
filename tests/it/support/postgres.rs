//! A throwaway PostgreSQL server for the tests of the PostgreSQL state schema: Debian's
//! `postgresql` package (15, installed by scripts/test.sh), a cluster made with `initdb` in
//! a temporary directory and run as an unprivileged user (`nobody` when the tests run as
//! root, which `initdb` and `postgres` refuse to run as), listening on a unix socket in that
//! directory only: no port to collide with, nothing reachable from elsewhere.
//!
//! One server per test binary run, started by the first test that asks; each test gets a
//! database of its own ([`Postgres::new_database`]). [`Postgres::shared_tls`] is a second
//! one, for the tests of TLS: `ssl = on` with a CA and certificates made here (rcgen), and
//! listening on 127.0.0.1 too, where its pg_hba.conf accepts TLS connections only
//! (`hostssl`; a plain one gets PostgreSQL's own refusal). A static is never dropped, so the
//! server is not stopped by a `Drop`: it runs under a shell that waits for its stdin to
//! close, and stdin is a pipe held by this process. When the test binary exits, however it
//! exits (`kill -9` included), the pipe closes and the shell stops the server and removes
//! the directory.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Where Debian's `postgresql` package puts the server programs.
const BIN: &str = "/usr/lib/postgresql/15/bin";
/// The superuser `initdb` creates, and its password (scram-sha-256, as a real server has).
pub const USER: &str = "sealer";
pub const PASSWORD: &str = "sealer-test-password";
/// How long the server may take to accept connections before the test gives up.
const START_BOUND: Duration = Duration::from_secs(60);

/// The user the TLS server authenticates by its client certificate (`cert` in pg_hba.conf).
pub const CERT_USER: &str = "sealer_cert";

/// A shared server.
pub struct Postgres {
    /// The socket directory (also the parent of the data directory).
    dir: PathBuf,
    /// Its port (the socket's name; TCP too for the TLS server).
    port: u16,
    /// The TLS server's certificates.
    tls: Option<TlsFiles>,
    /// The write end of the watchdog's stdin: closed when this process exits.
    _watchdog: Mutex<ChildStdin>,
}

/// What a client of the TLS server uses (in its directory's `client/`, removed with it).
pub struct TlsFiles {
    /// The CA that signed the server's certificate (for `localhost` only) and the client's.
    pub ca: PathBuf,
    /// A CA that signed nothing of this server.
    pub other_ca: PathBuf,
    /// The client certificate of [`CERT_USER`] and its key (0600).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

static SERVER: OnceLock<Postgres> = OnceLock::new();
static TLS_SERVER: OnceLock<Postgres> = OnceLock::new();
static PLAIN_TCP_SERVER: OnceLock<Postgres> = OnceLock::new();

/// Which server to start.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The unix socket only.
    Socket,
    /// `ssl = on`, TCP over TLS only.
    Tls,
    /// `ssl = off`, TCP by password.
    PlainTcp,
}
static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// The server's pg_hba.conf: the socket by password (the harness's psql), TCP over TLS only,
/// [`CERT_USER`] by its certificate.
const TLS_HBA: &str = "local all all scram-sha-256
hostssl all sealer_cert 127.0.0.1/32 cert
hostssl all all 127.0.0.1/32 scram-sha-256
";

/// The plain TCP server's pg_hba.conf: passwords, over the socket or TCP.
const PLAIN_TCP_HBA: &str = "local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
";

impl Postgres {
    /// The server of this test binary run, started on first use.
    pub fn shared() -> &'static Postgres {
        SERVER.get_or_init(|| Postgres::start(Kind::Socket))
    }

    /// The TLS server of this test binary run, started on first use.
    pub fn shared_tls() -> &'static Postgres {
        TLS_SERVER.get_or_init(|| {
            let server = Postgres::start(Kind::Tls);
            server.psql("postgres", &format!("CREATE ROLE {CERT_USER} LOGIN"));
            server
        })
    }

    /// A server without TLS (`ssl = off`) on 127.0.0.1 too, taking passwords over plain TCP:
    /// what `prefer` falls back on and `require` refuses.
    pub fn shared_plain_tcp() -> &'static Postgres {
        PLAIN_TCP_SERVER.get_or_init(|| Postgres::start(Kind::PlainTcp))
    }

    fn start(kind: Kind) -> Postgres {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "{BIN}/initdb is missing: install Debian's `postgresql` package (scripts/test.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("sealer-it-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let (uid, gid) = unprivileged_ids();
        std::fs::write(dir.join("pwfile"), format!("{PASSWORD}\n")).expect("pwfile");
        let mut owned = vec![dir.clone(), dir.join("pwfile")];
        let (port, tls_files, options) = match kind {
            Kind::Tls => {
                let (files, server_files) = make_certificates(&dir);
                owned.extend(server_files);
                std::fs::write(dir.join("pg_hba.conf"), TLS_HBA).expect("pg_hba.conf");
                owned.push(dir.join("pg_hba.conf"));
                let port = free_port();
                let options = format!(
                    "-p {port} -c listen_addresses=127.0.0.1 -c ssl=on -c ssl_cert_file=\"$D/server.crt\" \
                     -c ssl_key_file=\"$D/server.key\" -c ssl_ca_file=\"$D/ca.crt\" -c hba_file=\"$D/pg_hba.conf\""
                );
                (port, Some(files), options)
            }
            Kind::PlainTcp => {
                std::fs::write(dir.join("pg_hba.conf"), PLAIN_TCP_HBA).expect("pg_hba.conf");
                owned.push(dir.join("pg_hba.conf"));
                let port = free_port();
                let options = format!(
                    "-p {port} -c listen_addresses=127.0.0.1 -c ssl=off -c hba_file=\"$D/pg_hba.conf\""
                );
                (port, None, options)
            }
            Kind::Socket => (5432, None, "-c listen_addresses=''".to_string()),
        };
        for path in owned {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown");
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        // initdb, then the server in the background; then wait for stdin to close (this test
        // process exited), stop the server (fast shutdown) and remove everything.
        let script = format!(
            r#"set -e
D="$1"
{BIN}/initdb -D "$D/data" -U {USER} -A scram-sha-256 --pwfile="$D/pwfile" -E UTF8 --no-sync >"$D/initdb.log" 2>&1
{BIN}/postgres -D "$D/data" -k "$D" {options} -c fsync=off >"$D/server.log" 2>&1 &
pid=$!
cat >/dev/null || true
kill -INT "$pid" 2>/dev/null || true
wait "$pid" || true
rm -rf "$D"
"#
        );
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&dir)
            .env("HOME", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            command.uid(uid).gid(gid);
        }
        let mut child = command
            .spawn()
            .expect("start the PostgreSQL watchdog shell");
        let stdin = child.stdin.take().expect("watchdog stdin");
        // Reaped by nobody: the shell outlives every test and exits with this process.
        std::mem::forget(child);
        let server = Postgres {
            dir,
            port,
            tls: tls_files,
            _watchdog: Mutex::new(stdin),
        };
        let start = Instant::now();
        loop {
            if server.try_psql("postgres", "SELECT 1").is_ok() {
                return server;
            }
            if start.elapsed() > START_BOUND {
                let log =
                    |name: &str| std::fs::read_to_string(server.dir.join(name)).unwrap_or_default();
                panic!(
                    "PostgreSQL did not accept connections within {START_BOUND:?}\ninitdb: {}\nserver: {}",
                    log("initdb.log"),
                    log("server.log")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The directory of the server's unix socket (what `host=` names).
    pub fn socket_dir(&self) -> &Path {
        &self.dir
    }

    /// A new, empty database for one test; returns its name.
    pub fn new_database(&self) -> String {
        self.new_database_owned_by(USER)
    }

    /// A new, empty database owned by `owner` (who may create tables in it).
    pub fn new_database_owned_by(&self, owner: &str) -> String {
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::SeqCst)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name} OWNER {owner}"));
        name
    }

    /// The TLS server's client files. Panics on the plain server.
    pub fn tls(&self) -> &TlsFiles {
        self.tls
            .as_ref()
            .expect("a TLS server (Postgres::shared_tls)")
    }

    /// The TCP port of the TLS server.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://sealer:PASSWORD@HOST:PORT/DATABASE?QUERY` (no `?` when `query` is empty).
    pub fn tcp_url(&self, host: &str, database: &str, query: &str) -> String {
        let mut url = format!(
            "postgres://{USER}:{PASSWORD}@{host}:{}/{database}",
            self.port
        );
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    /// Runs `sql` in `database` with psql (unaligned, tuples only, stopping at the first
    /// error); returns its output. Panics with psql's error when it fails.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        self.try_psql(database, sql)
            .unwrap_or_else(|e| panic!("psql {database}: {sql}: {e}"))
    }

    /// Runs the SQL file at `path` in `database` as one transaction.
    pub fn psql_file(&self, database: &str, path: &Path) {
        let output = self
            .psql_command(database)
            .arg("--single-transaction")
            .arg("-f")
            .arg(path)
            .output()
            .expect("run psql");
        assert!(
            output.status.success(),
            "psql -f {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Runs `sql` in `database`; psql's error text when it fails.
    pub fn try_psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let output = self
            .psql_command(database)
            .arg("-c")
            .arg(sql)
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    fn psql_command(&self, database: &str) -> Command {
        let mut command = Command::new("psql");
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(&self.dir)
            .args(["-p", &self.port.to_string()])
            .args(["-U", USER, "-d", database])
            .env("PGPASSWORD", PASSWORD)
            .env_remove("PGSERVICE")
            .stdin(Stdio::null());
        command
    }
}

/// A port free on 127.0.0.1 now (the kernel's pick; free again when the listener closes).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// Writes the server's certificate (for `localhost` only), key and CA into `server_dir`,
/// and the client's files into its `client/`. Returns those and every file made, for the
/// server's user to own (PostgreSQL refuses a key others can read; the watchdog removes
/// them as that user).
fn make_certificates(server_dir: &Path) -> (TlsFiles, Vec<PathBuf>) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let ca_params = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    };
    let ca =
        CertifiedIssuer::self_signed(ca_params("sealer test CA"), KeyPair::generate().unwrap())
            .expect("CA certificate");
    let other_ca =
        CertifiedIssuer::self_signed(ca_params("another CA"), KeyPair::generate().unwrap())
            .expect("other CA certificate");

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = params
        .signed_by(&server_key, &ca)
        .expect("server certificate");

    let client_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, CERT_USER);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = params
        .signed_by(&client_key, &ca)
        .expect("client certificate");

    let write = |path: PathBuf, text: String, mode: u32| {
        std::fs::write(&path, text).expect("write a certificate file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    };
    let server_files = vec![
        write(server_dir.join("server.crt"), server.pem(), 0o644),
        write(
            server_dir.join("server.key"),
            server_key.serialize_pem(),
            0o600,
        ),
        write(server_dir.join("ca.crt"), ca.pem(), 0o644),
    ];
    let dir = server_dir.join("client");
    std::fs::create_dir(&dir).expect("client dir");
    let files = TlsFiles {
        ca: write(dir.join("ca.crt"), ca.pem(), 0o644),
        other_ca: write(dir.join("other-ca.crt"), other_ca.pem(), 0o644),
        client_cert: write(dir.join("client.crt"), client.pem(), 0o644),
        client_key: write(dir.join("client.key"), client_key.serialize_pem(), 0o600),
    };
    let mut made = server_files;
    made.extend([
        dir,
        files.ca.clone(),
        files.other_ca.clone(),
        files.client_cert.clone(),
        files.client_key.clone(),
    ]);
    (files, made)
}

/// Whether this process runs as root (the owner of `/proc/self` is the effective user).
fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        == 0
}

/// The user and group the server runs as: `nobody`/`nogroup` from /etc/passwd when root,
/// else this process's own.
fn unprivileged_ids() -> (u32, u32) {
    if !is_root() {
        let meta = std::fs::metadata("/proc/self").expect("/proc/self");
        return (meta.uid(), meta.gid());
    }
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"nobody") && fields.len() > 3).then(|| {
                (
                    fields[2].parse().expect("nobody's uid"),
                    fields[3].parse().expect("nobody's gid"),
                )
            })
        })
        .expect("a `nobody` user in /etc/passwd")
}

impl Postgres {
    /// The URL of `database` on this server, its password in it (tests run in parallel
    /// threads of one process, so they do not set `PGPASSWORD` for each other).
    pub fn url(&self, database: &str) -> String {
        format!("{}/{database}", self.url_without_database(true))
    }

    /// `postgres://sealer[:password]@%2F...socket-dir:PORT`, without the password when `password`
    /// is false (for tests of `PGPASSWORD`).
    pub fn url_without_database(&self, password: bool) -> String {
        let host: String = self
            .dir
            .to_string_lossy()
            .chars()
            .map(|c| match c {
                '/' => "%2F".to_string(),
                c => c.to_string(),
            })
            .collect();
        let port = self.port;
        if password {
            format!("postgres://{USER}:{PASSWORD}@{host}:{port}")
        } else {
            format!("postgres://{USER}@{host}:{port}")
        }
    }
}

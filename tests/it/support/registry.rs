//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8) started with
//! its own config in a temp dir, listening on 127.0.0.1 only, storing on the filesystem there.
//! Never Debian's default config (it listens on every interface and enables htpasswd).
//!
//! Variants: anonymous, htpasswd basic auth, and token auth backed by [`TokenServer`]. Each
//! test starts its own; the process is killed and the directory removed on drop, panics
//! included. Set `SEALER_TEST_REGISTRY_LOG=info` (or `debug`) to keep more in the registry's
//! log, which [`Registry::log`] returns and start-up failures print.

use super::http::{self, Reply};
use super::token::{TokenServer, TokenUser};
use std::fs;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DOCKER_REGISTRY: &str = "/usr/bin/docker-registry";
pub const SKOPEO: &str = "/usr/bin/skopeo";

/// The `service` the token registry names in its challenges, and the token's `aud`.
pub const TOKEN_SERVICE: &str = "sealer-test-registry";
/// The token's `iss`, which the registry trusts.
pub const TOKEN_ISSUER: &str = "sealer-test-token-issuer";

const START_ATTEMPTS: usize = 5;
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Fails the test, loudly, when a tool the tests need is not installed: these tests never
/// skip themselves.
pub fn require_tool(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: the registry and interop tests need Debian's `{package}` package. \
         Run the README's test command, `./scripts/test.sh`, which installs it (or \
         `apt-get install -y docker-registry skopeo`), then run the tests again."
    );
}

/// How clients must authenticate.
enum Auth {
    Anonymous,
    Basic { user: String, password: String },
    Token { users: Vec<TokenUser> },
}

/// A running registry. Dropping it kills the process and removes its directory.
pub struct Registry {
    // Field order matters: the process dies before the token server and the directory go.
    process: Process,
    token: Option<TokenServer>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Anyone may pull and push.
    pub fn anonymous() -> Registry {
        Registry::start(Auth::Anonymous)
    }

    /// HTTP basic auth against an htpasswd file holding one user.
    pub fn basic(user: &str, password: &str) -> Registry {
        Registry::start(Auth::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    /// Token auth; `user` may pull and push everything.
    pub fn token(user: &str, password: &str) -> Registry {
        Registry::with_token_users(vec![TokenUser::pull_push(user, password)])
    }

    /// Token auth with these users (and their allowed actions).
    pub fn with_token_users(users: Vec<TokenUser>) -> Registry {
        Registry::start(Auth::Token { users })
    }

    /// `127.0.0.1:PORT`, as image references and `sealer login` write it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port))
    }

    /// `127.0.0.1:PORT/` + `name`, e.g. `image("apps/web:v1")`.
    pub fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// The token server of a token-auth registry.
    pub fn token_server(&self) -> &TokenServer {
        self.token
            .as_ref()
            .expect("this registry does not use token auth")
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// `GET path` on the registry, with extra headers.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        http::get(self.addr(), path, headers)
            .unwrap_or_else(|e| panic!("GET {path} on the registry {}: {e}", self.host()))
    }

    fn start(auth: Auth) -> Registry {
        require_tool(DOCKER_REGISTRY, "docker-registry");
        let dir = tempfile::Builder::new()
            .prefix("sealer-registry-")
            .tempdir()
            .expect("temp dir for the registry");
        let data = dir.path().join("data");
        fs::create_dir_all(&data).expect("registry data dir");
        let (auth_yaml, token) = match &auth {
            Auth::Anonymous => (String::new(), None),
            Auth::Basic { user, password } => {
                // Cost 4, bcrypt's minimum: this is a test, not a password database.
                let hash = bcrypt::hash(password, 4).expect("bcrypt hash");
                let path = dir.path().join("htpasswd");
                fs::write(&path, format!("{user}:{hash}\n")).expect("write htpasswd");
                let yaml = format!(
                    "auth:\n  htpasswd:\n    realm: sealer-test\n    path: {}\n",
                    quoted(&path)
                );
                (yaml, None)
            }
            Auth::Token { users } => {
                let server = TokenServer::start(TOKEN_SERVICE, TOKEN_ISSUER, users.clone());
                let bundle = dir.path().join("token-ca.pem");
                fs::write(&bundle, server.cert_pem()).expect("write the token cert bundle");
                let yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                    json_str(&server.realm()),
                    json_str(TOKEN_SERVICE),
                    json_str(TOKEN_ISSUER),
                    quoted(&bundle),
                );
                (yaml, Some(server))
            }
        };
        let level = std::env::var("SEALER_TEST_REGISTRY_LOG").unwrap_or_else(|_| "error".into());
        let config_path = dir.path().join("config.yml");
        let log_path = dir.path().join("registry.log");
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: {level}\n  formatter: text\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
                 \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: sealer-test-secret-{port}\n\
                 {auth_yaml}",
                level = json_str(&level),
                data = quoted(&data),
            );
            fs::write(&config_path, config).expect("write the registry config");
            let log = fs::File::create(&log_path).expect("registry log file");
            let child = Command::new(DOCKER_REGISTRY)
                .arg("serve")
                .arg(&config_path)
                // Its REGISTRY_* variables override the config: start from nothing.
                .env_clear()
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {DOCKER_REGISTRY}: {e}"));
            let mut process = Process { child: Some(child) };
            match wait_ready(&mut process, port) {
                Ok(()) => {
                    return Registry {
                        process,
                        token,
                        port,
                        dir,
                    };
                }
                Err(why) => {
                    let log = fs::read_to_string(&log_path).unwrap_or_default();
                    drop(process);
                    last_failure = format!("{why}\n--- registry log ---\n{log}");
                    // Another process took the port between our probe and the registry's bind:
                    // try another one. Anything else is a real failure.
                    if !log.contains("address already in use") {
                        break;
                    }
                }
            }
        }
        panic!("the test registry did not start: {last_failure}");
    }
}

/// The registry process; killed on drop if it is still running.
struct Process {
    child: Option<Child>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // `try_wait` reaps it if it exited; while it has not, the PID is still our child's
        // (an unreaped child's PID cannot be reused), so killing by it is safe.
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until the registry answers `GET /v2/` (200 when anonymous, 401 with auth).
fn wait_ready(process: &mut Process, port: u16) -> Result<(), String> {
    let addr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + READY_TIMEOUT;
    let child = process.child.as_mut().expect("child");
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("docker-registry exited with {status}"));
        }
        if let Ok(reply) = http::get(addr, "/v2/", &[]) {
            // The header tells a registry from whatever else might hold the port.
            let is_registry =
                reply.header("docker-distribution-api-version") == Some("registry/2.0");
            if is_registry && matches!(reply.status, 200 | 401) {
                // It answered; make sure it is ours that did, not a stranger on a raced port.
                if child.try_wait().map_err(|e| e.to_string())?.is_none() {
                    return Ok(());
                }
                continue;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "docker-registry did not answer GET http://{addr}/v2/ within {READY_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A port that was free a moment ago (bind 127.0.0.1:0, read it, close).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn json_str(text: &str) -> String {
    serde_json::to_string(text).expect("string to JSON")
}

fn quoted(path: &Path) -> String {
    json_str(path.to_str().expect("UTF-8 temp path"))
}

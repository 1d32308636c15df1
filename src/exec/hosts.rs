//! Connections to hosts: one transport per host, opened on first use and reused by every
//! step on that host.

use sealer_providers::local::LocalTransport;
use sealer_providers::{Exec, ExecOutput, OutputSink, Transport, TransportError};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;

/// How to reach one host.
#[derive(Clone)]
pub enum Access {
    /// This machine; with a sandbox, every system write of the host's commands lands in it.
    Local {
        sandbox: Option<PathBuf>,
    },
    Ssh(Box<sealer_providers::ssh::SshConfig>),
}

/// A connected host: the transports sealer has.
pub enum HostTransport {
    Local(LocalTransport),
    Ssh(sealer_providers::ssh::SshTransport),
}

impl HostTransport {
    /// The host key fingerprint (SSH), for pinning in the state.
    pub fn host_key(&self) -> Option<String> {
        match self {
            HostTransport::Local(_) => None,
            HostTransport::Ssh(t) => Some(t.host_key_fingerprint().to_string()),
        }
    }
}

impl Transport for HostTransport {
    fn host(&self) -> &str {
        match self {
            HostTransport::Local(t) => t.host(),
            HostTransport::Ssh(t) => t.host(),
        }
    }

    async fn exec(
        &self,
        exec: &Exec,
        sink: Option<&OutputSink>,
    ) -> Result<ExecOutput, TransportError> {
        match self {
            HostTransport::Local(t) => t.exec(exec, sink).await,
            HostTransport::Ssh(t) => t.exec(exec, sink).await,
        }
    }
}

/// Every host's transport, connected lazily, at most once.
pub struct Pool {
    access: HashMap<String, Access>,
    open: Mutex<HashMap<String, Arc<HostTransport>>>,
}

impl Pool {
    pub fn new(access: HashMap<String, Access>) -> Pool {
        Pool {
            access,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// The transport of `host`, connecting (and verifying its host key) the first time.
    pub async fn get(&self, host: &str) -> Result<Arc<HostTransport>, TransportError> {
        let mut open = self.open.lock().await;
        if let Some(t) = open.get(host) {
            return Ok(Arc::clone(t));
        }
        let access = self
            .access
            .get(host)
            .cloned()
            .ok_or_else(|| TransportError {
                host: host.to_string(),
                kind: sealer_providers::TransportErrorKind::Connect,
                message: "no connection settings for this host".to_string(),
            })?;
        let transport = match access {
            Access::Local { sandbox: None } => HostTransport::Local(LocalTransport::new(host)),
            Access::Local { sandbox: Some(dir) } => {
                HostTransport::Local(LocalTransport::sandboxed(host, dir).await?)
            }
            Access::Ssh(config) => {
                HostTransport::Ssh(sealer_providers::ssh::SshTransport::connect(*config).await?)
            }
        };
        let transport = Arc::new(transport);
        open.insert(host.to_string(), Arc::clone(&transport));
        Ok(transport)
    }

    /// How many hosts a connection was opened to (0 for a no-op apply).
    pub async fn connections(&self) -> usize {
        self.open.lock().await.len()
    }
}

//! Registry credentials in `$SEALER_HOME/auth.json`, in Docker's `config.json` shape
//! (`{"auths": {"HOST[:PORT]": {"auth": base64("user:password")}}}`), created 0600.

use crate::diag::{Error, Result};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AuthEntry {
    auth: String,
}

/// A user name and password for one registry. Debug output hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"(sensitive value)")
            .finish()
    }
}

pub struct AuthStore {
    path: PathBuf,
}

impl AuthStore {
    pub fn new(home: &Path) -> AuthStore {
        AuthStore {
            path: home.join("auth.json"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<AuthFile> {
        match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::msg(format!(
                    "{}: invalid credentials file: {e}",
                    self.path.display()
                ))
                .hint("fix or delete the file, then `sealer login` again")
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
            Err(e) => Err(crate::diag::io_error("cannot read", &self.path, e)),
        }
    }

    fn write(&self, file: &AuthFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(file)
            .map_err(|e| Error::msg(format!("cannot encode credentials: {e}")))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        crate::home::open_home(dir)?;
        let tmp = dir.join(format!(".auth.json.tmp-{}", std::process::id()));
        let result = (|| -> std::io::Result<()> {
            // Created 0600 from the start: the secret is never readable by others, even briefly.
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(crate::diag::io_error("cannot write", &self.path, e));
        }
        Ok(())
    }

    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        let file = self.read()?;
        let Some(entry) = file.auths.get(registry) else {
            return Ok(None);
        };
        let decoded = STANDARD
            .decode(entry.auth.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':').map(|(u, p)| Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                })
            });
        match decoded {
            Some(c) => Ok(Some(c)),
            None => Err(Error::msg(format!(
                "{}: the entry for {registry} is not base64(user:password)",
                self.path.display()
            ))
            .hint(format!("run `sealer login {registry}` again"))),
        }
    }

    pub fn set(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let mut file = self.read()?;
        let auth = STANDARD.encode(format!("{}:{}", credentials.username, credentials.password));
        file.auths.insert(registry.to_string(), AuthEntry { auth });
        self.write(&file)
    }

    /// Forgets a registry's credentials; returns whether there were any.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        let mut file = self.read()?;
        let existed = file.auths.remove(registry).is_some();
        if existed {
            self.write(&file)?;
        }
        Ok(existed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_0600_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let store = AuthStore::new(dir.path());
        let c = Credentials {
            username: "u".into(),
            password: "p:a:ss".into(),
        };
        store.set("reg:5000", &c).unwrap();
        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(store.get("reg:5000").unwrap(), Some(c.clone()));
        assert_eq!(store.get("other").unwrap(), None);
        assert!(!format!("{c:?}").contains("p:a:ss"));
        assert!(store.remove("reg:5000").unwrap());
        assert_eq!(store.get("reg:5000").unwrap(), None);
    }
}

//! Downloads of `http(s)://` APP sources into a temp directory.

use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A downloaded file: where it is on disk and the name it takes in the app directory.
#[derive(Debug)]
pub struct Downloaded {
    pub path: PathBuf,
    pub name: String,
    pub size: u64,
}

/// The file name a URL's content gets: the last segment of its path.
pub fn file_name(url: &reqwest::Url) -> Result<String, String> {
    let name = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!(
            "{url}: the URL path must end with a file name (it names the downloaded file)"
        ));
    }
    Ok(name.to_string())
}

/// Downloads `url` into `dir`. Non-2xx answers are errors.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    dir: &Path,
) -> Result<Downloaded, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL {url}: {e}"))?;
    let name = file_name(&parsed)?;
    let mut response = client
        .get(parsed.clone())
        .send()
        .await
        .map_err(|e| format!("cannot download {url}: {}", crate::diag::error_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!(
            "cannot download {url}: the server answered {status}"
        ));
    }
    let path = dir.join(format!("{}-{name}", unique()));
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut size = 0u64;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("cannot download {url}: {}", crate::diag::error_chain(&e)))?
    {
        size += chunk.len() as u64;
        file.write_all(&chunk)
            .await
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    file.flush()
        .await
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(Downloaded { path, name, size })
}

/// A client with connect and read timeouts, so a dead server cannot hang a build.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120))
        .user_agent(concat!("sealer/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot create an HTTP client: {e}"))
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

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

/// Downloads `url` into `dir`, at most `limit` bytes ([`crate::limits::DOWNLOAD_MAX`]); a
/// larger answer is an error naming the limit, and what was written is removed. Non-2xx
/// answers are errors.
pub async fn download(
    client: &reqwest::Client,
    url: &str,
    dir: &Path,
    limit: u64,
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
    let too_large = |size: u64| {
        format!(
            "cannot download {url}: it is over {} ({size} bytes or more), the limit of one APP source",
            crate::limits::format_size(limit)
        )
    };
    if let Some(declared) = response.content_length().filter(|&n| n > limit) {
        return Err(too_large(declared));
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
        if size > limit {
            drop(file);
            let _ = tokio::fs::remove_file(&path).await;
            return Err(too_large(size));
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    /// A server that answers once with `head`, then streams zeros until the client leaves.
    fn server(head: &'static str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = conn.read(&mut request);
            let _ = conn.write_all(head.as_bytes());
            let zeros = vec![0u8; 64 * 1024];
            for _ in 0..1024 {
                if conn.write_all(&zeros).is_err() {
                    return;
                }
            }
        });
        format!("http://{addr}/app.tar")
    }

    fn download_with_limit(url: &str, dir: &Path) -> Result<Downloaded, String> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(download(&client().unwrap(), url, dir, 1024 * 1024))
    }

    #[test]
    fn an_endless_answer_stops_at_the_limit_and_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let url = server("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        let err = download_with_limit(&url, dir.path()).unwrap_err();
        assert!(err.contains("it is over 1 MiB"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_declared_size_over_the_limit_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let url = server("HTTP/1.1 200 OK\r\nContent-Length: 5000000000\r\n\r\n");
        let err = download_with_limit(&url, dir.path()).unwrap_err();
        assert!(err.contains("5000000000 bytes"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

//! TLS to the PostgreSQL state, against a real server with `ssl = on` whose pg_hba.conf
//! accepts TCP connections over TLS only (tests/it/support/postgres.rs): libpq's `sslmode`
//! semantics, the CA and name checks, client certificates, and the errors people get.

use crate::support::Sandbox;
use crate::support::postgres::{CERT_USER, PASSWORD, Postgres};
use assert_cmd::Command;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;

/// `sealer state list --state URL` in `sb`, with none of libpq's variables from the runner.
fn state_list(sb: &Sandbox, url: &str, env: &[(&str, &Path)]) -> Output {
    let mut cmd = sb.sealer();
    cmd.args(["state", "list", "--state", url]);
    clear_libpq_env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn clear_libpq_env(cmd: &mut Command) {
    for var in [
        "PGSSLMODE",
        "PGSSLROOTCERT",
        "PGSSLCERT",
        "PGSSLKEY",
        "PGPASSWORD",
        "PGPASSFILE",
    ] {
        cmd.env_remove(var);
    }
}

/// The command succeeded and read an empty database; returns its stdout.
fn connected(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.starts_with("# no state at postgres://"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    text
}

/// The command failed (exit 1); returns its stderr, which never holds the password.
fn refused(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
    err
}

fn query(params: &[(&str, &Path)], extra: &str) -> String {
    let mut parts: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", v.display()))
        .collect();
    if !extra.is_empty() {
        parts.push(extra.to_string());
    }
    parts.join("&")
}

#[test]
fn prefer_and_require_use_tls_and_disable_gets_the_servers_refusal() {
    let pg = Postgres::shared_tls();
    let database = pg.new_database();
    let sb = Sandbox::new();

    // prefer (the default) and require: the server accepts TCP over TLS only, so connecting
    // at all shows TLS was used.
    connected(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, ""),
        &[],
    ));
    connected(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, "sslmode=require"),
        &[],
    ));
    // The password exchange is bound to the TLS session (SCRAM-SHA-256-PLUS): with
    // `channel_binding=require` rust-postgres refuses to log in otherwise.
    connected(&state_list(
        &sb,
        &pg.tcp_url(
            "127.0.0.1",
            &database,
            "sslmode=require&channel_binding=require",
        ),
        &[],
    ));

    // allow: plain first, which this server refuses, then TLS.
    connected(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, "sslmode=allow"),
        &[],
    ));
    // A unix socket never uses TLS, whatever the mode (as in libpq): no root file needed.
    let socket = format!(
        "{}/{database}?sslmode=verify-full",
        pg.url_without_database(true)
    );
    connected(&state_list(&sb, &socket, &[]));

    // The server's own view of a session the store holds open: TLS.
    let store = sealer::state::StateStore::open_or_create_postgres(&pg.tcp_url(
        "127.0.0.1",
        &database,
        "sslmode=require",
    ))
    .unwrap();
    let ssl = pg.psql(
        "postgres",
        &format!(
            "SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.datname = '{database}' AND a.client_addr IS NOT NULL"
        ),
    );
    assert!(ssl.trim().starts_with("t|TLSv1."), "{ssl}");
    drop(store);

    // disable: PostgreSQL's refusal, and what to do.
    let err = refused(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, "sslmode=disable"),
        &[],
    ));
    assert!(
        err.contains(&format!(
            "no pg_hba.conf entry for host \"127.0.0.1\", user \"sealer\", database \"{database}\", no encryption (28000)"
        )),
        "{err}"
    );
    assert!(
        err.contains("over TLS only (hostssl in pg_hba.conf): connect with sslmode=require or verify-full instead of sslmode=disable"),
        "{err}"
    );
    assert!(
        err.contains(&format!("postgres://sealer@127.0.0.1:{}/", pg.port())),
        "the error names the URL: {err}"
    );

    // A mode PostgreSQL does not know.
    let err = refused(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, "sslmode=verify"),
        &[],
    ));
    assert!(
        err.contains("sslmode=verify is not a mode PostgreSQL knows"),
        "{err}"
    );
    assert!(err.contains("disable, allow, prefer, require, verify-ca, verify-full"));

    // A libpq parameter sealer does not take is said, and its value never shown.
    let err = refused(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, "sslpassword=s3cret"),
        &[],
    ));
    assert!(err.contains("unknown option `sslpassword`"), "{err}");
    assert!(
        err.contains("sealer takes sslmode, sslrootcert, sslcert and sslkey"),
        "{err}"
    );
    assert!(!err.contains("s3cret"), "{err}");
}

#[test]
fn verify_ca_checks_the_chain_and_verify_full_the_name_too() {
    let pg = Postgres::shared_tls();
    let tls = pg.tls();
    let database = pg.new_database();
    let sb = Sandbox::new();
    let url = |host: &str, mode: &str, root: &Path| {
        pg.tcp_url(
            host,
            &database,
            &query(&[("sslrootcert", root)], &format!("sslmode={mode}")),
        )
    };

    // verify-ca: the right CA, whatever the name (the certificate is for localhost).
    connected(&state_list(
        &sb,
        &url("127.0.0.1", "verify-ca", &tls.ca),
        &[],
    ));
    // Another CA: refused before anything is sent.
    let err = refused(&state_list(
        &sb,
        &url("127.0.0.1", "verify-ca", &tls.other_ca),
        &[],
    ));
    assert!(
        err.contains(&format!(
            "cannot connect: the server's certificate is not signed by a CA of {} (sslmode=verify-ca)",
            tls.other_ca.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("give the CA that signed the server's certificate with sslrootcert=PATH"),
        "{err}"
    );

    // verify-full: the name too.
    let err = refused(&state_list(
        &sb,
        &url("127.0.0.1", "verify-full", &tls.ca),
        &[],
    ));
    assert!(
        err.contains(
            "the server's certificate is for localhost, not 127.0.0.1 (sslmode=verify-full)"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "connect with a name the certificate is for (localhost), or use sslmode=verify-ca"
        ),
        "{err}"
    );
    connected(&state_list(
        &sb,
        &url("localhost", "verify-full", &tls.ca),
        &[],
    ));

    // The same from libpq's variables.
    let plain = pg.tcp_url("localhost", &database, "");
    let mut cmd = sb.sealer();
    clear_libpq_env(&mut cmd);
    let out = cmd
        .args(["state", "list", "--state", &plain])
        .env("PGSSLMODE", "verify-full")
        .env("PGSSLROOTCERT", &tls.ca)
        .output()
        .unwrap();
    connected(&out);

    // sslrootcert=system: the system's CAs (here SSL_CERT_FILE, which the system store
    // honours, naming the test CA), verify-full by default; nothing weaker is allowed.
    let system = |host: &str, extra: &str| {
        let mut cmd = sb.sealer();
        clear_libpq_env(&mut cmd);
        let url = pg.tcp_url(host, &database, &format!("sslrootcert=system{extra}"));
        cmd.args(["state", "list", "--state", &url])
            .env("SSL_CERT_FILE", &tls.ca)
            .env_remove("SSL_CERT_DIR")
            .output()
            .unwrap()
    };
    connected(&system("localhost", ""));
    let err = refused(&system("127.0.0.1", ""));
    assert!(
        err.contains("the server's certificate is for localhost, not 127.0.0.1"),
        "{err}"
    );
    let err = refused(&system("localhost", "&sslmode=require"));
    assert!(
        err.contains("sslmode=require may not be used with sslrootcert=system"),
        "{err}"
    );

    // verify-full without a root file: libpq's default, ~/.postgresql/root.crt, is not there.
    let err = refused(&state_list(
        &sb,
        &pg.tcp_url("localhost", &database, "sslmode=verify-full"),
        &[],
    ));
    assert!(
        err.contains(&format!(
            "sslmode=verify-full: root certificate file {} does not exist",
            sb.path(".postgresql/root.crt").display()
        )),
        "{err}"
    );
}

/// libpq's rule that a root file, when there, is checked by the weaker modes too: `require`
/// fails on a certificate of another CA; `prefer` then tries without TLS, which this server
/// refuses, and both failures are told.
#[test]
fn a_root_file_in_home_is_checked_by_require_and_prefer_falls_back_to_plain() {
    let pg = Postgres::shared_tls();
    let database = pg.new_database();
    let sb = Sandbox::new();
    std::fs::create_dir_all(sb.path(".postgresql")).unwrap();
    std::fs::copy(&pg.tls().other_ca, sb.path(".postgresql/root.crt")).unwrap();

    let err = refused(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, "sslmode=require"),
        &[],
    ));
    assert!(
        err.contains("the server's certificate is not signed by a CA of")
            && err.contains(".postgresql/root.crt (sslmode=require)"),
        "{err}"
    );

    let err = refused(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, ""),
        &[],
    ));
    assert!(
        err.contains("cannot connect (over TLS): the server's certificate is not signed by a CA"),
        "{err}"
    );
    assert!(
        err.contains("cannot connect (without TLS): no pg_hba.conf entry for host"),
        "{err}"
    );

    // The right CA there: require checks it and connects.
    std::fs::copy(&pg.tls().ca, sb.path(".postgresql/root.crt")).unwrap();
    connected(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, "sslmode=require"),
        &[],
    ));
}

/// A client certificate authenticates its user (`cert` in pg_hba.conf), from the URL or
/// libpq's default files; a key others can read is refused as libpq refuses it.
#[test]
fn a_client_certificate_authenticates_its_user() {
    let pg = Postgres::shared_tls();
    let tls = pg.tls();
    let database = pg.new_database_owned_by(CERT_USER);
    let sb = Sandbox::new();
    let base = format!("postgres://{CERT_USER}@localhost:{}/{database}", pg.port());

    let with_cert = format!(
        "{base}?{}",
        query(
            &[
                ("sslrootcert", &tls.ca),
                ("sslcert", &tls.client_cert),
                ("sslkey", &tls.client_key),
            ],
            "sslmode=verify-full"
        )
    );
    connected(&state_list(&sb, &with_cert, &[]));
    // It may write: sealer creates its schema there.
    sealer::state::StateStore::open_or_create_postgres(&with_cert)
        .unwrap()
        .create_cluster("c")
        .unwrap();

    // Without a certificate, the server refuses.
    let err = refused(&state_list(
        &sb,
        &format!("{base}?{}", query(&[("sslrootcert", &tls.ca)], "")),
        &[],
    ));
    assert!(
        err.contains("connection requires a valid client certificate"),
        "{err}"
    );

    // libpq's default files under ~/.postgresql; the key must be 0600.
    let dot = sb.path(".postgresql");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::copy(&tls.ca, dot.join("root.crt")).unwrap();
    std::fs::copy(&tls.client_cert, dot.join("postgresql.crt")).unwrap();
    std::fs::copy(&tls.client_key, dot.join("postgresql.key")).unwrap();
    let key = dot.join("postgresql.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let default_files = format!("{base}?sslmode=verify-full");
    let err = refused(&state_list(&sb, &default_files, &[]));
    assert!(
        err.contains(&format!(
            "private key file {} has permissions 644",
            key.display()
        )),
        "{err}"
    );
    // libpq's rule: 0600 for the user's own key, 0640 when root owns it.
    let allowed = if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&key).unwrap()) == 0 {
        "640"
    } else {
        "600"
    };
    assert!(
        err.contains(&format!("chmod {allowed} {}", key.display())),
        "{err}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = state_list(&sb, &default_files, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.starts_with("# no state"),
        "the state written above: {text}"
    );

    // A certificate named in the URL and missing is said, not silently left out.
    let err = refused(&state_list(
        &sb,
        &format!("{base}?sslcert=/nonexistent/client.crt"),
        &[],
    ));
    assert!(
        err.contains("client certificate file /nonexistent/client.crt does not exist"),
        "{err}"
    );
}

/// A TCP forwarder from 127.0.0.1 inside the bed's hub (where sealer runs against the hosts)
/// to the TLS server's port on this namespace's 127.0.0.1; TLS runs through it end to end.
/// Stops accepting when dropped.
struct HubForwarder {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl HubForwarder {
    fn start(bed: &crate::support::testbed::TestBed, to: u16) -> HubForwarder {
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::sync::atomic::{AtomicBool, Ordering};
        // A socket stays in the namespace it was made in: bind it from a thread in the hub.
        let listener = std::thread::scope(|s| {
            s.spawn(|| {
                bed.enter_hub();
                TcpListener::bind("127.0.0.1:0").expect("bind in the hub")
            })
            .join()
            .unwrap()
        });
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((client, _)) => client,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        continue;
                    }
                    Err(_) => break,
                };
                client.set_nonblocking(false).unwrap();
                let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                    continue;
                };
                let pairs = [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ];
                for (mut from, mut into) in pairs {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut into);
                        let _ = into.shutdown(Shutdown::Write);
                    });
                }
            }
        });
        HubForwarder { port, stop }
    }
}

impl Drop for HubForwarder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The whole path once: plan and apply on a bed host with the state over `verify-full` TLS,
/// then a plan with nothing to do, and the state read back from the database.
#[test]
fn apply_and_plan_run_against_a_state_over_verified_tls() {
    use crate::apply::Deploy;
    use crate::support::testbed::TestBed;
    let pg = Postgres::shared_tls();
    let database = pg.new_database();
    let d = Deploy::new(TestBed::start(1));
    let forwarder = HubForwarder::start(&d.bed, pg.port());
    let tls_query = query(&[("sslrootcert", &pg.tls().ca)], "sslmode=verify-full");
    let url = format!(
        "postgres://sealer:{PASSWORD}@localhost:{}/{database}?{tls_query}",
        forwarder.port
    );
    let file = d.clusterfile(&[0], &[], "");
    let file = file.to_str().unwrap();

    let plan = d.sealer(&["plan", "-f", file, "--detailed-exitcode", "--state", &url]);
    assert_eq!(
        plan.status.code(),
        Some(2),
        "changes to make: {}",
        String::from_utf8_lossy(&plan.stderr)
    );
    d.sealer_ok(&["apply", "-f", file, "--auto-approve", "--state", &url]);
    let plan = d.sealer(&["plan", "-f", file, "--detailed-exitcode", "--state", &url]);
    assert_eq!(
        plan.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(!d.sb.home().join("state.db").exists());

    let store = sealer::state::StateStore::open_existing_postgres(&pg.tcp_url(
        "localhost",
        &database,
        &tls_query,
    ))
    .unwrap()
    .expect("the state the apply wrote");
    assert!(store.cluster("bed").unwrap().unwrap().serial > 1);
    drop(forwarder);
}

/// A server without TLS: `prefer` connects plain (the server said no to TLS before anything
/// was sent), `require` and stronger refuse, saying what to change.
#[test]
fn a_server_without_tls_serves_prefer_and_refuses_require() {
    let pg = Postgres::shared_plain_tcp();
    let database = pg.new_database();
    let sb = Sandbox::new();
    connected(&state_list(
        &sb,
        &pg.tcp_url("127.0.0.1", &database, ""),
        &[],
    ));
    let ssl = pg.psql("postgres", "SELECT count(*) FROM pg_stat_ssl WHERE ssl");
    assert_eq!(ssl.trim(), "0", "nothing over TLS on a server without it");
    for mode in ["require", "verify-full"] {
        let url = pg.tcp_url(
            "localhost",
            &database,
            &query(
                &[("sslrootcert", &Postgres::shared_tls().tls().ca)],
                &format!("sslmode={mode}"),
            ),
        );
        let err = refused(&state_list(&sb, &url, &[]));
        assert!(
            err.contains(&format!(
                "cannot connect: the server does not offer TLS, and sslmode={mode} requires it"
            )),
            "{err}"
        );
        assert!(err.contains("turn TLS on in the server (ssl = on"), "{err}");
    }
}

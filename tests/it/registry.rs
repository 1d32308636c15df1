//! push, pull, login and logout against a real registry (Debian's docker-registry), anonymous,
//! with htpasswd basic auth, and with token auth; and builds whose base image only the
//! registry has.

use crate::support::Sandbox;
use crate::support::registry::{Registry, TOKEN_SERVICE};
use crate::support::token::TokenUser;
use assert_cmd::Command;
use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub const WEB_KUBEFILE: &str = "FROM scratch\n\
    APP web local://web.yaml\n\
    LABEL io.example/owner=team-a\n\
    LAUNCH [\"web\"]\n";
pub const WEB_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n";

/// Writes the small `web` image's context (Kubefile and web.yaml) into the sandbox.
pub fn web_context(sb: &Sandbox) -> PathBuf {
    sb.write_tree("ctx", &[("Kubefile", WEB_KUBEFILE), ("web.yaml", WEB_YAML)])
}

/// Builds the `web` image as `name`; returns its manifest digest.
pub fn build_web(sb: &Sandbox, name: &str) -> String {
    let ctx = web_context(sb);
    let mut t = Transcript::default();
    build_digest(sb, &mut t, name, &ctx)
}

/// `sealer build -t NAME CTX`: checks that it printed the image ID (the one `sealer images`
/// and `inspect` show) and returns the image's manifest digest (what registries name).
pub fn build_digest(sb: &Sandbox, t: &mut Transcript, name: &str, ctx: &Path) -> String {
    let id = digest_of(&t.ok(sb.sealer().args(["build", "-t", name]).arg(ctx)));
    let image = inspect(sb, name);
    assert_eq!(image["id"], id.as_str(), "build prints the image ID");
    image["digest"].as_str().unwrap().to_string()
}

/// The one `sha256:<64 hex>` line a build (the ID), push or pull (the manifest digest) prints.
pub fn digest_of(stdout: &str) -> String {
    let digest = stdout.trim();
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "expected a sha256 digest on stdout, got {stdout:?}"
    );
    digest.to_string()
}

pub fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

pub fn inspect(sb: &Sandbox, name: &str) -> Value {
    let mut t = Transcript::default();
    serde_json::from_str(&t.ok(sb.sealer().args(["inspect", name]))).expect("inspect prints JSON")
}

/// `sealer images --json` as (name, digest) pairs.
pub fn images(sb: &Sandbox) -> Vec<(String, String)> {
    let mut t = Transcript::default();
    let rows: Value = serde_json::from_str(&t.ok(sb.sealer().args(["images", "--json"])))
        .expect("images --json prints JSON");
    rows.as_array()
        .expect("an array")
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub fn app_names(image: &Value) -> Vec<&str> {
    image["applications"]
        .as_array()
        .expect("applications")
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect()
}

pub fn app<'a>(image: &'a Value, name: &str) -> &'a Value {
    image["applications"]
        .as_array()
        .expect("applications")
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no app {name} in {image:#}"))
}

/// Runs commands and keeps everything they printed, so a test can check what never appears
/// (a password) and show the whole conversation when an assertion fails.
#[derive(Default)]
pub struct Transcript {
    /// What the commands printed, stdout and stderr, and nothing else.
    pub printed: String,
    /// Commands (with their stdin) and what they printed, for failure messages.
    pub text: String,
}

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Transcript {
    pub fn run(&mut self, cmd: &mut Command) -> Outcome {
        let out = cmd.output().expect("run sealer");
        let outcome = Outcome {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
        };
        self.printed.push_str(&outcome.stdout);
        self.printed.push_str(&outcome.stderr);
        self.text.push_str(&format!(
            "$ {cmd:?}\n[exit {:?}]\n{}{}\n",
            outcome.code, outcome.stdout, outcome.stderr
        ));
        outcome
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&mut self, cmd: &mut Command) -> String {
        self.ok_full(cmd).stdout
    }

    pub fn ok_full(&mut self, cmd: &mut Command) -> Outcome {
        let outcome = self.run(cmd);
        assert_eq!(
            outcome.code,
            Some(0),
            "command failed:\n{}\n{}",
            outcome.stderr,
            self.text
        );
        outcome
    }

    /// Runs a command that must fail with exit 1 and an `error: ...` message; returns stderr.
    pub fn fails(&mut self, cmd: &mut Command) -> String {
        let outcome = self.run(cmd);
        assert_eq!(
            outcome.code,
            Some(1),
            "command should have failed with exit 1:\n{}",
            self.text
        );
        assert!(
            outcome.stderr.starts_with("error: "),
            "errors start with `error: `: {:?}",
            outcome.stderr
        );
        outcome.stderr
    }
}

fn auth_json(sb: &Sandbox) -> Option<Value> {
    let text = std::fs::read(sb.home().join("auth.json")).ok()?;
    Some(serde_json::from_slice(&text).expect("auth.json is JSON"))
}

#[test]
fn push_rmi_pull_round_trip_keeps_the_digest() {
    let registry = Registry::anonymous();
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let digest = build_web(&sb, "web:v1");
    let remote = registry.image("apps/web:v1");
    t.ok(sb.sealer().args(["tag", "web:v1", &remote]));

    let push = t.ok_full(sb.sealer().args(["push", &remote]));
    assert_eq!(digest_of(&push.stdout), digest);
    assert!(
        push.stderr.contains("2 blobs uploaded, 0 already present"),
        "config and one layer are new: {}",
        push.stderr
    );

    // The registry holds our manifest, byte for byte, under the tag and under the digest.
    let reply = registry.get("/v2/apps/web/manifests/v1", &[("Accept", OCI_MANIFEST)]);
    assert_eq!(reply.status, 200, "{}", registry.log());
    assert_eq!(reply.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(reply.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(sha256(&reply.body), digest);
    let by_digest = registry.get(
        &format!("/v2/apps/web/manifests/{digest}"),
        &[("Accept", OCI_MANIFEST)],
    );
    assert_eq!(by_digest.body, reply.body);

    // Pushing again uploads nothing.
    let again = t.ok_full(sb.sealer().args(["push", &remote]));
    assert_eq!(digest_of(&again.stdout), digest);
    assert!(
        again.stderr.contains("0 blobs uploaded, 2 already present"),
        "{}",
        again.stderr
    );

    // Forget it locally, then pull it back.
    t.ok(sb.sealer().args(["rmi", "web:v1", &remote]));
    assert_eq!(images(&sb), vec![]);
    let err = t.fails(sb.sealer().args(["inspect", &remote]));
    assert!(err.contains("no image"), "{err}");
    let pulled = t.ok_full(sb.sealer().args(["pull", &remote]));
    assert_eq!(digest_of(&pulled.stdout), digest);
    assert_eq!(images(&sb), vec![(remote.clone(), digest.clone())]);
    let image = inspect(&sb, &remote);
    assert_eq!(image["name"], remote.as_str());
    assert_eq!(image["digest"], digest.as_str());
    assert_eq!(image["labels"]["io.example/owner"], "team-a");
    assert_eq!(app_names(&image), ["web"]);
    assert_eq!(
        app(&image, "web")["launchCmd"],
        "kubectl apply -f application/apps/web/web.yaml"
    );
    assert_eq!(image["launch"]["app_names"], json!(["web"]));

    // A fresh store pulls the same bytes, by digest too.
    let other = Sandbox::new();
    let by_digest_name = format!("{}@{digest}", registry.image("apps/web"));
    let pulled = t.ok(other.sealer().args(["pull", &by_digest_name]));
    assert_eq!(digest_of(&pulled), digest);
    assert_eq!(inspect(&other, &by_digest_name)["digest"], digest.as_str());
    // What was pulled is what was built: saving it gives the manifest the registry serves.
    let layout = other.path("layout");
    t.ok(other
        .sealer()
        .args(["save", &by_digest_name, "-o"])
        .arg(&layout));
    let hex = digest.trim_start_matches("sha256:");
    let saved = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    assert_eq!(saved, reply.body);
}

#[test]
fn localhost_names_speak_plain_http_too() {
    let registry = Registry::anonymous();
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let digest = build_web(&sb, "web:v1");
    let remote = format!("localhost:{}/apps/web:v1", registry.addr().port());
    t.ok(sb.sealer().args(["tag", "web:v1", &remote]));
    assert_eq!(
        digest_of(&t.ok(sb.sealer().args(["push", &remote]))),
        digest
    );
    let other = Sandbox::new();
    assert_eq!(
        digest_of(&t.ok(other.sealer().args(["pull", &remote]))),
        digest
    );
    // --insecure is accepted and changes nothing for a loopback registry.
    let third = Sandbox::new();
    assert_eq!(
        digest_of(&t.ok(third.sealer().args(["pull", "--insecure", &remote]))),
        digest
    );
}

#[test]
fn pull_and_push_errors_name_the_image() {
    let registry = Registry::anonymous();
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let missing = registry.image("apps/missing:v1");
    let err = t.fails(sb.sealer().args(["pull", &missing]));
    assert!(err.contains(&missing), "{err}");
    assert!(images(&sb).is_empty(), "a failed pull names nothing");

    let err = t.fails(sb.sealer().args(["push", &missing]));
    assert!(err.contains("no image"), "{err}");

    // A registry that is not there: a connection error, exit 1.
    let gone = {
        let other = Registry::anonymous();
        other.image("apps/web:v1")
    };
    let err = t.fails(sb.sealer().args(["pull", &gone]));
    assert!(err.contains(&gone), "{err}");
}

/// The login → push → pull → logout story, for any registry that wants `user`/`password`.
/// Returns the transcript, for checks specific to the auth kind.
fn login_push_pull_logout(registry: &Registry, user: &str, password: &str) -> Transcript {
    let sb = Sandbox::new();
    let mut t = Transcript::default();
    let digest = build_web(&sb, "web:v1");
    let host = registry.host();
    let remote = registry.image("apps/web:v1");
    t.ok(sb.sealer().args(["tag", "web:v1", &remote]));

    // Not logged in: refused, with the way out.
    let err = t.fails(sb.sealer().args(["push", &remote]));
    assert!(err.contains(&remote), "{err}");
    assert!(err.contains(&format!("sealer login {host}")), "{err}");
    assert!(
        registry
            .get("/v2/apps/web/manifests/v1", &[("Accept", OCI_MANIFEST)])
            .status
            == 401,
        "nothing was pushed"
    );

    // A wrong password: refused, nothing stored.
    let err = t.fails(
        sb.sealer()
            .args(["login", &host, "-u", user, "--password-stdin"])
            .write_stdin("not-the-password\n"),
    );
    assert!(err.contains("wrong user name or password"), "{err}");
    assert!(err.contains(&host), "{err}");
    assert_eq!(auth_json(&sb), None, "a failed login stores nothing");

    // The right one: stored 0600 in SEALER_HOME.
    let login = t.ok_full(
        sb.sealer()
            .args(["login", &host, "-u", user, "--password-stdin"])
            .write_stdin(format!("{password}\n")),
    );
    assert!(login.stderr.contains("login succeeded"), "{}", login.stderr);
    let path = sb.home().join("auth.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "auth.json must be private");
    let auth = auth_json(&sb).unwrap();
    let entry = auth["auths"][&host]["auth"]
        .as_str()
        .unwrap_or_else(|| panic!("no entry for {host} in {auth}"));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry)
        .unwrap();
    assert_eq!(decoded, format!("{user}:{password}").as_bytes());

    // Push, then pull into a clean store of the same home.
    let push = t.ok_full(sb.sealer().args(["push", &remote]));
    assert_eq!(digest_of(&push.stdout), digest);
    assert!(
        push.stderr.contains("2 blobs uploaded, 0 already present"),
        "{}",
        push.stderr
    );
    let again = t.ok_full(sb.sealer().args(["push", &remote]));
    assert!(
        again.stderr.contains("0 blobs uploaded, 2 already present"),
        "{}",
        again.stderr
    );
    t.ok(sb.sealer().args(["rmi", "web:v1", &remote]));
    assert_eq!(
        digest_of(&t.ok(sb.sealer().args(["pull", &remote]))),
        digest
    );
    let image = inspect(&sb, &remote);
    assert_eq!(image["digest"], digest.as_str());
    assert_eq!(app_names(&image), ["web"]);

    // Logout forgets the credentials; the registry refuses us again.
    let logout = t.ok_full(sb.sealer().args(["logout", &host]));
    assert!(logout.stderr.contains(&host), "{}", logout.stderr);
    let auth = auth_json(&sb).unwrap_or(json!({}));
    assert!(auth["auths"].get(&host).is_none(), "{auth}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "auth.json stays private after logout");
    let logout = t.ok_full(sb.sealer().args(["logout", &host]));
    assert!(
        logout.stderr.contains("no credentials"),
        "{}",
        logout.stderr
    );
    t.ok(sb.sealer().args(["rmi", &remote]));
    let err = t.fails(sb.sealer().args(["pull", &remote]));
    assert!(err.contains(&format!("sealer login {host}")), "{err}");

    assert!(
        !t.printed.contains(password),
        "the password must never be printed:\n{}",
        t.printed
    );
    t
}

#[test]
fn basic_auth_login_push_pull_logout() {
    let password = "s3cret-basic-Pa55";
    let registry = Registry::basic("alice", password);
    login_push_pull_logout(&registry, "alice", password);
}

#[test]
fn token_auth_login_push_pull_logout() {
    let password = "s3cret-token-Pa55";
    let registry = Registry::token("bob", password);
    // The harness: the registry sends clients to our token server.
    let challenge = registry.get("/v2/", &[]);
    assert_eq!(challenge.status, 401);
    let header = challenge.header("www-authenticate").unwrap_or("");
    assert!(header.starts_with("Bearer "), "{header}");
    assert!(
        header.contains(&registry.token_server().realm()),
        "{header}"
    );

    login_push_pull_logout(&registry, "bob", password);

    let requests = registry.token_server().requests();
    assert!(
        requests
            .iter()
            .all(|r| r.service.as_deref() == Some(TOKEN_SERVICE)),
        "every token request names the registry's service: {requests:#?}"
    );
    assert!(
        requests
            .iter()
            .any(|r| r.user.as_deref() == Some("bob") && r.status == 401),
        "the wrong password reached the token server: {requests:#?}"
    );
    let pushed = requests.iter().find(|r| {
        r.user.as_deref() == Some("bob")
            && r.status == 200
            && r.scopes
                .iter()
                .any(|s| s.starts_with("repository:apps/web:") && s.contains("push"))
    });
    let pushed = pushed.unwrap_or_else(|| panic!("no push token was issued: {requests:#?}"));
    let access = pushed.access.to_string();
    assert!(
        access.contains(r#""name":"apps/web""#) && access.contains(r#""push""#),
        "{access}"
    );
}

#[test]
fn token_auth_read_only_user_cannot_push() {
    let registry = Registry::with_token_users(vec![
        TokenUser::pull_push("writer", "writer-pw-1"),
        TokenUser {
            name: "reader".into(),
            password: "reader-pw-1".into(),
            actions: vec!["pull".into()],
        },
    ]);
    let host = registry.host();
    let remote = registry.image("apps/web:v1");
    let mut t = Transcript::default();

    let writer = Sandbox::new();
    let digest = build_web(&writer, &remote);
    t.ok(writer
        .sealer()
        .args(["login", &host, "-u", "writer", "--password-stdin"])
        .write_stdin("writer-pw-1"));
    t.ok(writer.sealer().args(["push", &remote]));

    let reader = Sandbox::new();
    t.ok(reader
        .sealer()
        .args(["login", &host, "-u", "reader", "--password-stdin"])
        .write_stdin("reader-pw-1"));
    assert_eq!(
        digest_of(&t.ok(reader.sealer().args(["pull", &remote]))),
        digest
    );
    let other = registry.image("apps/other:v1");
    t.ok(reader.sealer().args(["tag", &remote, &other]));
    let err = t.fails(reader.sealer().args(["push", &other]));
    assert!(err.contains(&other), "{err}");
    assert!(err.contains("sealer login"), "{err}");
    assert!(
        registry
            .get("/v2/apps/other/manifests/v1", &[("Accept", OCI_MANIFEST)])
            .status
            != 200,
        "nothing was pushed"
    );
}

const BASE_KUBEFILE: &str = "FROM scratch\n\
    APP base local://base.sh\n\
    APPCMDS base [\"bash base.sh\", \"--fast\"]\n\
    CNI calico local://calico.yaml\n\
    LABEL io.example/tier=base\n\
    LAUNCH [\"calico\", \"base\"]\n";

const CHILD_KUBEFILE: &str = "FROM {BASE}\n\
    APP web local://web.yaml\n\
    LAUNCH [\"calico\", \"base\", \"web\"]\n";

/// Builds and pushes the base image from its own sandbox; returns its digest.
fn push_base(registry: &Registry, base: &str, t: &mut Transcript) -> String {
    let sb = Sandbox::new();
    let ctx = sb.write_tree(
        "base",
        &[
            ("Kubefile", BASE_KUBEFILE),
            ("base.sh", "echo base\n"),
            ("calico.yaml", "kind: Calico\n"),
        ],
    );
    let digest = build_digest(&sb, t, base, &ctx);
    if let Some(user) = registry_user(registry) {
        t.ok(sb
            .sealer()
            .args(["login", &registry.host(), "-u", user.0, "--password-stdin"])
            .write_stdin(user.1));
    }
    t.ok(sb.sealer().args(["push", base]));
    digest
}

fn registry_user(registry: &Registry) -> Option<(&'static str, &'static str)> {
    let reply = registry.get("/v2/", &[]);
    (reply.status == 401).then_some(("carol", "carol-pw-9"))
}

fn child_context(sb: &Sandbox, base: &str) -> PathBuf {
    sb.write_tree(
        "child",
        &[
            ("Kubefile", &CHILD_KUBEFILE.replace("{BASE}", base)),
            ("web.yaml", WEB_YAML),
        ],
    )
}

#[test]
fn build_pulls_a_base_image_only_the_registry_has() {
    let registry = Registry::anonymous();
    let base = registry.image("base:v1");
    let mut t = Transcript::default();
    let base_digest = push_base(&registry, &base, &mut t);

    let sb = Sandbox::new();
    let ctx = child_context(&sb, &base);
    let child_digest = build_digest(&sb, &mut t, "child:v1", &ctx);
    assert_ne!(child_digest, base_digest);

    // The base was pulled into the store under its name, unchanged.
    let names = images(&sb);
    assert!(
        names.contains(&(base.clone(), base_digest.clone())),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .any(|(n, d)| n == "child:v1" && *d == child_digest),
        "{names:?}"
    );

    // The child inherits the base's apps, APPCMDS, labels and layers.
    let base_image = inspect(&sb, &base);
    let child = inspect(&sb, "child:v1");
    assert_eq!(app_names(&child), ["base", "calico", "web"], "{child:#}");
    assert_eq!(
        app(&child, "base")["launchCmd"],
        "cd application/apps/base/ && bash base.sh --fast"
    );
    assert_eq!(app(&child, "calico")["type"], "kube");
    assert_eq!(
        app(&child, "web")["launchCmd"],
        "kubectl apply -f application/apps/web/web.yaml"
    );
    assert_eq!(child["labels"]["io.example/tier"], "base");
    assert_eq!(
        child["labels"]["cluster.alpha.sealer.io/kube-cni"],
        "[\"calico\"]"
    );
    assert_eq!(
        child["launch"]["app_names"],
        json!(["calico", "base", "web"])
    );
    let base_layers = base_image["layers"].as_array().unwrap();
    let child_layers = child["layers"].as_array().unwrap();
    assert!(
        child_layers.len() > base_layers.len() && child_layers.starts_with(base_layers),
        "the child's layers start with the base's: {child:#}"
    );

    // Building again uses the stored base: same digest (and no second pull is needed).
    let again = build_digest(&sb, &mut t, "child:v2", &ctx);
    assert_eq!(again, child_digest);
}

#[test]
fn build_pulls_its_base_with_the_stored_credentials() {
    let registry = Registry::basic("carol", "carol-pw-9");
    let base = registry.image("base:v1");
    let mut t = Transcript::default();
    let base_digest = push_base(&registry, &base, &mut t);

    let sb = Sandbox::new();
    let ctx = child_context(&sb, &base);
    // Located at the Kubefile's FROM, with the registry's advice.
    let outcome = t.run(sb.sealer().args(["build", "-t", "child:v1"]).arg(&ctx));
    assert_eq!(outcome.code, Some(1), "{}", t.text);
    let err = outcome.stderr;
    assert!(err.contains("/Kubefile:1:6: error: base image"), "{err}");
    assert!(err.contains(&base), "{err}");
    assert!(err.contains("sealer login"), "{err}");
    assert!(images(&sb).is_empty(), "a failed build names nothing");

    t.ok(sb
        .sealer()
        .args(["login", &registry.host(), "-u", "carol", "--password-stdin"])
        .write_stdin("carol-pw-9\n"));
    t.ok(sb.sealer().args(["build", "-t", "child:v1"]).arg(&ctx));
    assert!(images(&sb).contains(&(base.clone(), base_digest)));
    assert_eq!(
        app_names(&inspect(&sb, "child:v1")),
        ["base", "calico", "web"]
    );
}

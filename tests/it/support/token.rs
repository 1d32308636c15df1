//! A token server for the registry's `auth: token` mode (Docker's token authentication, as
//! distribution 2.8 verifies it in `registry/auth/token`).
//!
//! `GET /token?service=S&scope=repository:NAME:pull,push` with HTTP basic credentials answers
//! `{"token": JWT, "access_token": JWT, "expires_in": 300}`. The JWT is ES256-signed with a
//! P-256 key made at start (rcgen), and its header carries the self-signed certificate in
//! `x5c`; the registry trusts it through `rootcertbundle` (the same certificate), so the leaf
//! verifies as its own root. Claims: `iss`, `sub`, `aud` (= service), `exp`, `nbf`, `iat`,
//! `jti`, and `access: [{"type": "repository", "name": NAME, "actions": [...]}]`: the requested
//! actions the user may do. A request without credentials gets a token granting nothing, as
//! Docker's own token servers do; wrong credentials get a 401.

use super::http::{Request, Response, Server};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// How long a token lives, in seconds.
pub const TOKEN_LIFETIME: u64 = 300;

/// A user the token server knows, with the repository actions it grants them.
#[derive(Debug, Clone)]
pub struct TokenUser {
    pub name: String,
    pub password: String,
    pub actions: Vec<String>,
}

impl TokenUser {
    /// A user who may pull and push every repository.
    pub fn pull_push(name: &str, password: &str) -> TokenUser {
        TokenUser {
            name: name.to_string(),
            password: password.to_string(),
            actions: vec!["pull".into(), "push".into()],
        }
    }
}

/// One request the server answered, for tests to check what the client asked.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    /// The basic-auth user name, when credentials were sent.
    pub user: Option<String>,
    pub service: Option<String>,
    pub scopes: Vec<String>,
    pub status: u16,
    /// The `access` claim of the token handed out (empty when none was).
    pub access: serde_json::Value,
}

pub struct TokenServer {
    server: Server,
    cert_pem: String,
    service: String,
    issuer: String,
    log: Arc<Mutex<Vec<TokenRequest>>>,
}

struct Signer {
    key: EncodingKey,
    cert_der_b64: String,
    service: String,
    issuer: String,
    users: Vec<TokenUser>,
    serial: AtomicU64,
}

impl TokenServer {
    pub fn start(service: &str, issuer: &str, users: Vec<TokenUser>) -> TokenServer {
        let certified = rcgen::generate_simple_self_signed(vec!["sealer-test-token".to_string()])
            .expect("generate the token signing certificate");
        let key = EncodingKey::from_ec_pem(certified.signing_key.serialize_pem().as_bytes())
            .expect("load the token signing key");
        let signer = Signer {
            key,
            cert_der_b64: STANDARD.encode(certified.cert.der()),
            service: service.to_string(),
            issuer: issuer.to_string(),
            users,
            serial: AtomicU64::new(0),
        };
        let log: Arc<Mutex<Vec<TokenRequest>>> = Arc::default();
        let server = {
            let log = log.clone();
            Server::start(move |req| {
                let (response, entry) = signer.answer(req);
                log.lock().unwrap().push(entry);
                response
            })
        };
        TokenServer {
            server,
            cert_pem: certified.cert.pem(),
            service: service.to_string(),
            issuer: issuer.to_string(),
            log,
        }
    }

    /// The `realm` the registry sends clients to.
    pub fn realm(&self) -> String {
        self.server.url("/token")
    }

    /// The certificate (PEM) the registry must trust (`rootcertbundle`).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.log.lock().unwrap().clone()
    }
}

impl Signer {
    fn answer(&self, req: &Request) -> (Response, TokenRequest) {
        let scopes: Vec<String> = req
            .query_all("scope")
            .iter()
            .flat_map(|s| s.split(' '))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut entry = TokenRequest {
            user: None,
            service: req.query_one("service").map(str::to_string),
            scopes: scopes.clone(),
            status: 0,
            access: json!([]),
        };
        let fail = |status: u16, message: &str, mut entry: TokenRequest| {
            entry.status = status;
            let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]});
            let mut response = Response::json(status, &body);
            if status == 401 {
                response = response.with_header("WWW-Authenticate", r#"Basic realm="token""#);
            }
            (response, entry)
        };
        if req.method != "GET" || req.path != "/token" {
            return fail(404, "not found", entry);
        }
        if entry.service.as_deref() != Some(self.service.as_str()) {
            return fail(400, "unknown service", entry);
        }
        let user = match req.header("authorization").map(parse_basic) {
            None => None,
            Some(Some((name, password))) => {
                entry.user = Some(name.clone());
                match self
                    .users
                    .iter()
                    .find(|u| u.name == name && u.password == password)
                {
                    Some(u) => Some(u),
                    None => return fail(401, "wrong user name or password", entry),
                }
            }
            Some(None) => return fail(401, "malformed Authorization header", entry),
        };
        let access = grant(&scopes, user);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        let serial = self.serial.fetch_add(1, Ordering::SeqCst);
        let claims = json!({
            "iss": self.issuer,
            "sub": user.map(|u| u.name.as_str()).unwrap_or(""),
            "aud": self.service,
            "exp": now + TOKEN_LIFETIME,
            "nbf": now,
            "iat": now,
            "jti": format!("sealer-test-{}-{serial}-{now}", std::process::id()),
            "access": access,
        });
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("JWT".to_string());
        header.x5c = Some(vec![self.cert_der_b64.clone()]);
        let token = jsonwebtoken::encode(&header, &claims, &self.key).expect("sign the token");
        entry.status = 200;
        entry.access = claims["access"].clone();
        let body = json!({
            "token": token,
            "access_token": token,
            "expires_in": TOKEN_LIFETIME,
        });
        (Response::json(200, &body), entry)
    }
}

/// `Basic base64(user:password)` → (user, password).
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The `access` claim: for each `repository:NAME:ACTIONS` scope, the requested actions the
/// user may do (nothing for anonymous requests).
fn grant(scopes: &[String], user: Option<&TokenUser>) -> serde_json::Value {
    let mut access = Vec::new();
    let Some(user) = user else {
        return json!(access);
    };
    for scope in scopes {
        let Some((kind, rest)) = scope.split_once(':') else {
            continue;
        };
        let Some((name, actions)) = rest.rsplit_once(':') else {
            continue;
        };
        if kind != "repository" {
            continue;
        }
        let granted: Vec<&str> = actions
            .split(',')
            .filter(|a| user.actions.iter().any(|allowed| allowed == a))
            .collect();
        if !granted.is_empty() {
            access.push(json!({"type": "repository", "name": name, "actions": granted}));
        }
    }
    json!(access)
}

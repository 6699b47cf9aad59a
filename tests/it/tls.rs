//! HTTPS with rustls: server certificate, mutual TLS against a client CA, clients bound to a
//! certificate fingerprint, and the refusal to serve plain HTTP beyond loopback.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use sha2::{Digest, Sha256};
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

const BIN: &str = env!("CARGO_BIN_EXE_kodomo-hub");
const TOWN: &str = "131016";

struct Pki {
    ca_pem: String,
    server_pem: String,
    server_key_pem: String,
    clients: Vec<(String, String, Vec<u8>)>, // (cert pem, key pem, cert der)
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, &ca_key);
    let sign = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("signed");
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    };
    let (server_pem, server_key_pem, _) = sign(vec!["localhost".into(), "127.0.0.1".into()]);
    let clients = (0..2)
        .map(|i| sign(vec![format!("vendor-{i}.example")]))
        .collect();
    Pki {
        ca_pem: ca_cert.pem(),
        server_pem,
        server_key_pem,
        clients,
    }
}

fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run CLI")
}

fn token(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf8")
        .trim()
        .to_string()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent(pki: &Pki, client: Option<usize>) -> ureq::Agent {
    let roots = vec![Certificate::from_pem(pki.ca_pem.as_bytes()).expect("ca pem")];
    let mut tls = TlsConfig::builder().root_certs(RootCerts::Specific(Arc::new(roots)));
    if let Some(i) = client {
        let (cert, key, _) = &pki.clients[i];
        tls = tls.client_cert(Some(ClientCert::new_with_certs(
            &[Certificate::from_pem(cert.as_bytes()).expect("cert pem")],
            PrivateKey::from_pem(key.as_bytes()).expect("key pem"),
        )));
    }
    ureq::Agent::config_builder()
        .tls_config(tls.build())
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn push(agent: &ureq::Agent, port: u16, token: &str, id: &str) -> Result<u16, ureq::Error> {
    let body = serde_json::json!({"records": [{
        "record_type": "prenatal-checkup", "schema_version": "1.0", "source_record_id": id,
        "subject": {"resident_no": "M1"}, "effective_date": "2025-05-01",
        "attended": true, "visited_on": "2025-05-01"
    }]})
    .to_string();
    agent
        .post(format!(
            "https://localhost:{port}/v1/municipalities/{TOWN}/records"
        ))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body.as_str())
        .map(|r| r.status().as_u16())
}

#[test]
fn mutual_tls_binds_clients_to_their_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki();
    for (name, text) in [
        ("ca.pem", &pki.ca_pem),
        ("server.pem", &pki.server_pem),
        ("server.key", &pki.server_key_pem),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write pem");
    }
    token(
        dir.path(),
        &["admin", "municipality", "add", TOWN, "千代田区"],
    );
    let bound_fingerprint = hex::encode(Sha256::digest(&pki.clients[0].2));
    let bound = token(
        dir.path(),
        &[
            "admin",
            "client",
            "add",
            "--municipality",
            TOWN,
            "--name",
            "bound",
            "--role",
            "source",
            "--cert-fingerprint",
            &bound_fingerprint,
        ],
    );
    let unbound = token(
        dir.path(),
        &[
            "admin",
            "client",
            "add",
            "--municipality",
            TOWN,
            "--name",
            "unbound",
            "--role",
            "source",
        ],
    );
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let path = |n: &str| dir.path().join(n).to_string_lossy().into_owned();
    let _server = Server(
        Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &listen,
                "--tls-cert",
                &path("server.pem"),
            ])
            .args([
                "--tls-key",
                &path("server.key"),
                "--client-ca",
                &path("ca.pem"),
            ])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server"),
    );
    let with_first = agent(&pki, Some(0));
    let started = Instant::now();
    while push(&with_first, port, &bound, "warmup").is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "HTTPS server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The bound token works over its own certificate…
    assert_eq!(push(&with_first, port, &bound, "a-1").expect("https"), 200);
    // …and is refused over another certificate, which an unbound token may use.
    let with_second = agent(&pki, Some(1));
    assert_eq!(push(&with_second, port, &bound, "a-2").expect("https"), 401);
    assert_eq!(
        push(&with_second, port, &unbound, "a-3").expect("https"),
        200
    );
    // No client certificate: the handshake itself fails.
    assert!(push(&agent(&pki, None), port, &unbound, "a-4").is_err());
    // HTTPS only: plain HTTP on the same port gets no HTTP answer.
    let plain = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .call()
            .is_err()
    );
}

#[test]
fn plain_http_beyond_loopback_needs_an_explicit_flag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("DATABASE_URL")
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refusing plain HTTP"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A hub serving HTTPS from `dir` (server certificate of the test PKI; with `mutual`, clients
/// must present a certificate of its CA), with one town whose client may push and read.
/// Returns the server, its port and the client's token once it answers.
fn tls_hub(dir: &Path, pki: &Pki, mutual: bool) -> (Server, u16, String) {
    for (name, text) in [
        ("ca.pem", &pki.ca_pem),
        ("server.pem", &pki.server_pem),
        ("server.key", &pki.server_key_pem),
        ("client.pem", &pki.clients[0].0),
        ("client.key", &pki.clients[0].1),
    ] {
        std::fs::write(dir.join(name), text).expect("write pem");
    }
    token(dir, &["admin", "municipality", "add", TOWN, "千代田区"]);
    let token = token(
        dir,
        &[
            "admin",
            "client",
            "add",
            "--municipality",
            TOWN,
            "--name",
            "vendor",
            "--role",
            "source,caseworker",
        ],
    );
    let port = free_port();
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let mut serve = Command::new(BIN);
    serve
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args([
            "--tls-cert",
            &path("server.pem"),
            "--tls-key",
            &path("server.key"),
        ]);
    if mutual {
        serve.args(["--client-ca", &path("ca.pem")]);
    }
    let server = Server(
        serve
            .arg("--data-dir")
            .arg(dir)
            .env_remove("DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start server"),
    );
    let probe = agent(pki, Some(0));
    let started = Instant::now();
    while probe
        .get(format!("https://localhost:{port}/healthz"))
        .call()
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "HTTPS server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port, token)
}

/// `conformance server` against the TLS hub; its exit code and result.json.
fn run_kit(
    dir: &Path,
    port: u16,
    token: &str,
    out: &str,
    tls: &[&str],
) -> (Option<i32>, serde_json::Value) {
    let path = |n: &str| dir.join(n).to_string_lossy().into_owned();
    let run = Command::new(BIN)
        .args([
            "conformance",
            "server",
            "--base-url",
            &format!("https://localhost:{port}"),
        ])
        .args(["--token-env", "KH_TLS_TOKEN", "--municipality", TOWN])
        .args([
            "--capabilities",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/conformance/capabilities.example.json"
            ),
            "--out",
            &path(out),
        ])
        .args(
            tls.iter()
                .map(|a| a.replace("{dir}", &dir.to_string_lossy())),
        )
        .env("KH_TLS_TOKEN", token)
        .output()
        .expect("run the server suite");
    let result = std::fs::read_to_string(dir.join(out).join("result.json"))
        .map(|text| serde_json::from_str(&text).expect("result.json"))
        .unwrap_or(serde_json::Value::Null);
    (run.status.code(), result)
}

#[test]
fn the_conformance_runner_checks_a_hub_over_https_signed_by_a_private_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki();
    let (_server, port, token) = tls_hub(dir.path(), &pki, false);
    let (code, result) = run_kit(
        dir.path(),
        port,
        &token,
        "trusted",
        &["--ca-file", "{dir}/ca.pem"],
    );
    assert_eq!(code, Some(0), "{result:#}");
    assert_eq!(result["verdict"], "conformant");
    assert_eq!(
        result["server"]["base_url"],
        format!("https://localhost:{port}")
    );
    // Without the private CA the server's certificate is not trusted: nothing could be
    // verified (incomplete), nothing is judged failed.
    let (code, result) = run_kit(dir.path(), port, &token, "untrusted", &[]);
    assert_eq!(code, Some(2), "{result:#}");
    assert_eq!(result["verdict"], "incomplete");
}

#[test]
fn the_conformance_runner_presents_a_client_certificate_for_mutual_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki();
    let (_server, port, token) = tls_hub(dir.path(), &pki, true);
    let with_certificate = [
        "--ca-file",
        "{dir}/ca.pem",
        "--client-cert",
        "{dir}/client.pem",
        "--client-key",
        "{dir}/client.key",
    ];
    let (code, result) = run_kit(dir.path(), port, &token, "mutual", &with_certificate);
    assert_eq!(code, Some(0), "{result:#}");
    assert_eq!(result["verdict"], "conformant");
    // No client certificate: the hub refuses the handshake, so the run is incomplete.
    let (code, result) = run_kit(
        dir.path(),
        port,
        &token,
        "anonymous",
        &with_certificate[..2],
    );
    assert_eq!(code, Some(2), "{result:#}");
    assert_eq!(result["verdict"], "incomplete");
    // A certificate without its key is a usage error.
    let (code, _) = run_kit(dir.path(), port, &token, "no-key", &with_certificate[..4]);
    assert_eq!(code, Some(3));
}

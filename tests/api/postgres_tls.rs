//! TLS to PostgreSQL through the libpq and OpenSSL compiled into tessera: a private server
//! that takes only TLS connections, with a certificate from a test CA.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

use crate::helpers::*;
use crate::private_postgres::PrivatePostgres;

/// A self-signed certificate authority.
fn authority(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

const DB_PASSWORD: &str = "tls test password";

/// A PostgreSQL with `ssl=on` whose `pg_hba.conf` takes TCP connections over TLS only, so
/// whatever connects to it went over TLS, with SCRAM passwords as production would (libpq's
/// SCRAM and channel binding run on the bundled OpenSSL too); and two root certificates:
/// the CA that signed its certificate and an unrelated one.
struct TlsPostgres {
    server: PrivatePostgres,
    root: PathBuf,
    other_root: PathBuf,
    _certs: tempfile::TempDir,
}

impl TlsPostgres {
    fn start() -> Option<Self> {
        Backend::postgres()?;
        let certs = tempfile::tempdir().unwrap();
        let ca = authority("tessera test CA");
        let root = certs.path().join("root.pem");
        std::fs::write(&root, ca.pem()).unwrap();
        let other_root = certs.path().join("other-root.pem");
        std::fs::write(&other_root, authority("some other CA").pem()).unwrap();

        // verify-full checks the host name the URL uses (127.0.0.1) against the names here.
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();

        let server = PrivatePostgres::start_with(|data| {
            std::fs::write(data.join("server.crt"), cert.pem()).unwrap();
            let key_file = data.join("server.key");
            std::fs::write(&key_file, key.serialize_pem()).unwrap();
            // PostgreSQL refuses a key others may read.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
            let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
            conf.push_str(
                "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n",
            );
            std::fs::write(data.join("postgresql.conf"), conf).unwrap();
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n",
            )
            .unwrap();
        })?;
        PgConnection::establish(&server.socket_url())
            .expect("connecting over the unix socket")
            .batch_execute(&format!("ALTER ROLE postgres PASSWORD '{DB_PASSWORD}'"))
            .unwrap();
        Some(TlsPostgres {
            server,
            root,
            other_root,
            _certs: certs,
        })
    }

    /// A URL with a password and these connection parameters.
    fn url(&self, params: &str) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres?{params}",
            DB_PASSWORD.replace(' ', "%20"),
            self.server.port()
        )
    }

    /// Encrypted, the certificate checked against `root` and the host name, the password
    /// exchange bound to the TLS channel.
    fn verify_full(&self, root: &Path) -> String {
        self.url(&format!(
            "sslmode=verify-full&sslrootcert={}&channel_binding=require",
            root.display()
        ))
    }
}

/// Environment for `tessera serve` on `url`.
fn serve_env(url: &str, master_key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("TESSERA_DATABASE_URL", url.to_string()),
        ("TESSERA_MASTER_KEY", master_key.to_string()),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tessera_serves_and_issues_tokens_on_postgres_over_verified_tls() {
    let Some(tls) = TlsPostgres::start() else {
        return;
    };
    let refused = PgConnection::establish(&tls.url("sslmode=disable"))
        .err()
        .expect("the server refuses unencrypted connections");
    assert!(refused.to_string().contains("no encryption"), "{refused}");
    // Without a root certificate, require encrypts but checks no certificate.
    PgConnection::establish(&tls.url("sslmode=require")).expect("sslmode=require");

    let dir = tempfile::tempdir().unwrap();
    let master_key = tessera::crypto::MasterKey::generate().to_base64();
    let env = serve_env(&tls.verify_full(&tls.root), &master_key);
    let server = Process::start(dir.path(), &as_refs(&env)).await;
    let client = reqwest::Client::new();
    let register = client
        .post(format!("{}/register", server.address))
        .json(&serde_json::json!({ "username": "alice", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status().as_u16(), 201);
    let login = client
        .post(format!("{}/oauth/token", server.address))
        .form(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 200);
    let issued = tokens(login).await;
    let kid = header(&issued.access_token)["kid"]
        .as_str()
        .unwrap()
        .to_string();
    let jwks: serde_json::Value = client
        .get(format!("{}/.well-known/jwks.json", server.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == kid),
        "the signing key, read from PostgreSQL, is published: {jwks}"
    );
    let refreshed = client
        .post(format!("{}/oauth/token", server.address))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", issued.refresh_token.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status().as_u16(), 200, "refresh over TLS");
}

/// Runs `tessera serve` and expects it to stop by itself; returns what it wrote.
fn serve_expecting_failure(dir: &Path, env: &[(&str, &str)]) -> String {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(dir)
        .arg("serve")
        .env("TESSERA_LISTEN", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tessera kept running");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(!status.success(), "tessera started: {stderr}");
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_against_the_wrong_root_certificate_stops_start_up_with_a_clear_error() {
    let Some(tls) = TlsPostgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let master_key = tessera::crypto::MasterKey::generate().to_base64();
    let env = serve_env(&tls.verify_full(&tls.other_root), &master_key);
    let stderr = serve_expecting_failure(dir.path(), &as_refs(&env));
    assert!(stderr.contains("database"), "{stderr}");
    assert!(stderr.contains("certificate verify failed"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslrootcert_system_trusts_the_certificates_named_by_ssl_cert_file() {
    let Some(tls) = TlsPostgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let master_key = tessera::crypto::MasterKey::generate().to_base64();
    let mut env = serve_env(
        &tls.url("sslmode=verify-full&sslrootcert=system"),
        &master_key,
    );
    env.push(("SSL_CERT_FILE", tls.root.display().to_string()));
    let server = Process::start(dir.path(), &as_refs(&env)).await;
    let ready = reqwest::get(format!("{}/readyz", server.address))
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200);
}

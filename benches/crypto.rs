//! Micro-benchmarks of the CPU work behind tessera's endpoints: RS256 signing with the key
//! ring (one thread, two threads sharing one key pair, two threads with a key pair each),
//! jsonwebtoken's plain `encode` for comparison, ES256 and EdDSA signing with the key ring
//! beside it, verification of each, argon2id at OWASP parameters, and the JWKS (rebuild and
//! per-request cost).
//!
//! Run with `cargo bench --bench crypto` (optionally a filter: `cargo bench --bench crypto --
//! argon2`). `cargo test` never runs these: criterion benches run only under `cargo bench`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::RsaPrivateKey;
use tessera::crypto::MasterKey;
use tessera::passwords::Argon2Params;
use tessera::passwords::PasswordHasher;
use tessera::store::signing_keys::SigningKeyRow;
use tessera::tokens::algs::SigningAlg;
use tessera::tokens::claims::AccessClaims;
use tessera::tokens::keygen::KeySource;
use tessera::tokens::keygen::{self, NewKeyPair};
use tessera::tokens::keyring::{KeyRing, TokenKind};
use tessera::tokens::rotation::sealed_row;

const ISSUER: &str = "http://127.0.0.1:8080";
const HOUR_MS: i64 = 3_600_000;

fn new_key() -> NewKeyPair {
    new_key_for(SigningAlg::Rs256)
}

fn new_key_for(alg: SigningAlg) -> NewKeyPair {
    keygen::generate(&KeySource::Generate { bits: 2048 }, alg).expect("key generation")
}

/// A stored row for `key`, sealed under `master` the way `tokens::rotation` stores keys.
fn row(master: &MasterKey, key: &NewKeyPair, activates_at: i64) -> SigningKeyRow {
    let copy = NewKeyPair {
        kid: key.kid.clone(),
        alg: key.alg,
        bits: key.bits,
        public: key.public.clone(),
        pkcs8_der: key.pkcs8_der.clone(),
    };
    sealed_row(master, copy, activates_at, activates_at)
}

/// A ring holding one active key and one staged successor, as a running server has.
fn ring_with(active: &NewKeyPair, staged: &NewKeyPair) -> KeyRing {
    let master = MasterKey::generate();
    let now = tessera::tokens::now_ms();
    let rows = vec![
        row(&master, active, now - HOUR_MS),
        row(&master, staged, now + 24 * HOUR_MS),
    ];
    KeyRing::new(
        ISSUER.into(),
        SigningAlg::ALL.to_vec(),
        master,
        HOUR_MS,
        rows,
        now,
    )
    .expect("key ring")
}

fn access_claims() -> AccessClaims {
    let now = tessera::now();
    AccessClaims {
        iss: ISSUER.into(),
        sub: "0b0e5bb2-6b1f-4b8e-9d7c-2f3c1a9e4d10".into(),
        aud: ISSUER.into(),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::new_v4().to_string(),
        client_id: "first-party".into(),
        scope: "profile email".into(),
        roles: vec!["user".into()],
        sid: Some(uuid::Uuid::new_v4().to_string()),
        auth_time: Some(now),
        amr: Some(vec!["pwd".into()]),
        username: Some("alice".into()),
        attributes: None,
        token_type: "access".into(),
        fresh: true,
    }
}

/// Signs `iters` tokens split across two threads, each thread using the ring `pick` gives
/// it; returns the wall time.
fn sign_on_two_threads(
    iters: u64,
    rings: [&KeyRing; 2],
    alg: SigningAlg,
    claims: &AccessClaims,
) -> Duration {
    let per_thread = iters.div_ceil(2);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for ring in rings {
            scope.spawn(move || {
                for _ in 0..per_thread {
                    black_box(
                        ring.sign(TokenKind::Access, Some(alg), claims)
                            .expect("sign"),
                    );
                }
            });
        }
    });
    start.elapsed()
}

fn signing(c: &mut Criterion) {
    let (a, b, c2, d) = (new_key(), new_key(), new_key(), new_key());
    let shared = ring_with(&a, &b);
    let other = ring_with(&c2, &d);
    let claims = access_claims();

    let mut group = c.benchmark_group("rs256_sign");
    group.throughput(Throughput::Elements(1));
    group.bench_function("keyring_1_thread", |bench| {
        bench.iter(|| {
            shared
                .sign(TokenKind::Access, None, black_box(&claims))
                .unwrap()
        })
    });
    // Two threads: criterion's time per iteration is wall time / tokens, so elements/s is
    // the combined rate of both threads.
    group.bench_function("keyring_2_threads_shared_key", |bench| {
        bench.iter_custom(|iters| {
            sign_on_two_threads(iters, [&shared, &shared], SigningAlg::Rs256, &claims)
        })
    });
    group.bench_function("keyring_2_threads_key_per_thread", |bench| {
        bench.iter_custom(|iters| {
            sign_on_two_threads(iters, [&shared, &other], SigningAlg::Rs256, &claims)
        })
    });

    // jsonwebtoken takes PKCS#1 DER; tessera stores PKCS#8.
    let pkcs1 = RsaPrivateKey::from_pkcs8_der(&a.pkcs8_der)
        .and_then(|k| k.to_pkcs1_der().map_err(Into::into))
        .expect("PKCS#1 DER");
    let encoding = EncodingKey::from_rsa_der(pkcs1.as_bytes());
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(a.kid.clone());
    header.typ = Some("at+jwt".into());
    group.bench_function("jsonwebtoken_encode_1_thread", |bench| {
        bench.iter(|| jsonwebtoken::encode(&header, black_box(&claims), &encoding).unwrap())
    });
    group.finish();

    let token = shared.sign(TokenKind::Access, None, &claims).unwrap();
    let mut group = c.benchmark_group("rs256_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("keyring_verify_access", |bench| {
        bench.iter(|| {
            shared
                .verify::<AccessClaims>(black_box(&token), TokenKind::Access, Some(ISSUER))
                .unwrap()
        })
    });
    group.finish();

    for (alg, name) in [(SigningAlg::Es256, "es256"), (SigningAlg::EdDsa, "eddsa")] {
        let ring = ring_with(&new_key_for(alg), &new_key_for(alg));
        let mut group = c.benchmark_group(format!("{name}_sign"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("keyring_1_thread", |bench| {
            bench.iter(|| {
                ring.sign(TokenKind::Access, Some(alg), black_box(&claims))
                    .unwrap()
            })
        });
        group.bench_function("keyring_2_threads_shared_key", |bench| {
            bench.iter_custom(|iters| sign_on_two_threads(iters, [&ring, &ring], alg, &claims))
        });
        group.finish();
        let token = ring.sign(TokenKind::Access, Some(alg), &claims).unwrap();
        let mut group = c.benchmark_group(format!("{name}_verify"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("keyring_verify_access", |bench| {
            bench.iter(|| {
                ring.verify::<AccessClaims>(black_box(&token), TokenKind::Access, Some(ISSUER))
                    .unwrap()
            })
        });
        group.finish();
    }
}

fn argon2(c: &mut Criterion) {
    let hasher = PasswordHasher::new(Argon2Params {
        memory_kib: 19456,
        iterations: 2,
        parallelism: 1,
    })
    .expect("hasher");
    let phc = hasher.hash("correct horse battery staple").unwrap();
    let mut group = c.benchmark_group("argon2id_owasp");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("verify_1_thread", |bench| {
        bench.iter(|| assert!(hasher.verify(black_box("correct horse battery staple"), &phc)))
    });
    group.finish();
}

fn jwks(c: &mut Criterion) {
    let master = MasterKey::generate();
    let (a, b) = (new_key(), new_key());
    let now = tessera::tokens::now_ms();
    let rows = vec![
        row(&master, &a, now - HOUR_MS),
        row(&master, &b, now + 24 * HOUR_MS),
    ];
    let ring = Arc::new(
        KeyRing::new(
            ISSUER.into(),
            vec![SigningAlg::Rs256],
            master.clone(),
            HOUR_MS,
            rows.clone(),
            now,
        )
        .expect("ring"),
    );
    let mut group = c.benchmark_group("jwks");
    // What `GET /.well-known/jwks.json` does per request: take the current set and copy
    // the pre-rendered body into the response.
    group.bench_function("serve_prerendered", |bench| {
        bench.iter(|| {
            let set = ring.current();
            black_box((set.jwks_body.as_str().to_owned(), set.etag.clone()))
        })
    });
    // What a key change costs: classify, decrypt the signing keys, render the body and its
    // ETag.
    group.bench_function("rebuild_two_keys", |bench| {
        bench.iter(|| {
            KeyRing::new(
                ISSUER.into(),
                vec![SigningAlg::Rs256],
                master.clone(),
                HOUR_MS,
                black_box(rows.clone()),
                now,
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, signing, argon2, jwks);
criterion_main!(benches);

//! The admin console in a real browser: headless Chromium (Debian's package) driven by
//! Playwright for Python (`tests/python/console_flow.py`). Skipped without Python or
//! Chromium unless `TESSERA_REQUIRE_PYTHON=1` / `TESSERA_REQUIRE_BROWSER=1` say CI must run
//! it. `TESSERA_SCREENSHOTS=DIR` keeps the screenshots (`docs/images/console-*.png`).

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::browser_pages::chromium;
use crate::helpers::*;
use crate::mfa::Authenticator;
use crate::reachable::spawn_reachable;
use crate::third_party::{python, run_script_for};

both_backends! {
    async fn an_admin_runs_the_console_in_chromium(backend) {
        let Some(python) = python() else { return };
        let Some(chromium) = chromium() else { return };
        // Plain http on 127.0.0.1 in the test, so no `Secure` on the cookies.
        let tessera = spawn_reachable(backend, |s| s.cookie_secure = false).await;
        let app = &tessera.app;
        app.create_user("root", &["admin"]);
        app.create_user("deputy", &["admin"]);
        app.create_user("bob", &[]);
        let root = app.login("root", PASSWORD).await;
        let enrolment: Value = app
            .post_json_bearer("/account/mfa/totp", &root.access_token, &json!({ "password": PASSWORD }))
            .await
            .json()
            .await
            .unwrap();
        let secret = enrolment["secret"].as_str().unwrap().to_string();
        let mut authenticator = Authenticator::new(&secret);
        let code = authenticator.next_code().await;
        let confirmed = app
            .post_json_bearer("/account/mfa/totp/confirm", &root.access_token, &json!({ "otp": code }))
            .await;
        assert_eq!(confirmed.status().as_u16(), 200);
        let kept = app.login("bob", PASSWORD).await.refresh_token.unwrap();
        let doomed = app.login("bob", PASSWORD).await.refresh_token.unwrap();
        let sid = claims(&doomed)["sid"].as_str().unwrap().to_string();
        let shots = match std::env::var("TESSERA_SCREENSHOTS") {
            Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => app.dir.path().to_path_buf(),
        };
        run_script_for(
            &python,
            "console_flow.py",
            &[
                ("TESSERA_URL", &app.address),
                ("CHROMIUM", chromium.to_str().unwrap()),
                ("ADMIN", "root"),
                ("PASSWORD", PASSWORD),
                ("TOTP_SECRET", &secret),
                ("DEPUTY", "deputy"),
                ("BOB", "bob"),
                ("BOB_SID", &sid),
                ("BOB_REFRESH", &doomed),
                ("BOB_OTHER_REFRESH", &kept),
                ("SCREENSHOTS", shots.to_str().unwrap()),
            ],
            300,
        )
        .await;
    }
}

//! The binaries' command lines: help, configuration errors, dev tokens, PEM public keys.

use std::process::Command;

use pacer_tests::{TestApp, bin};
use serde_json::json;

#[test]
fn both_binaries_document_their_settings_in_help() {
    for (name, setting) in [
        ("pacer-api", "PACER_JWT_SECRET"),
        ("pacer-worker", "PACER_CONCURRENCY"),
    ] {
        let out = Command::new(bin(name))
            .arg("--help")
            .output()
            .expect("binary runs");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --help");
        assert!(
            text.contains("DATABASE_URL") && text.contains("REDIS_URL") && text.contains(setting),
            "{text}"
        );
    }
}

#[test]
fn a_missing_or_malformed_setting_stops_with_one_line_naming_it() {
    let out = Command::new(bin("pacer-api"))
        .env_remove("PACER_JWT_SECRET")
        .env_remove("PACER_JWT_PUBLIC_KEY_FILE")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("PACER_JWT_SECRET"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let out = Command::new(bin("pacer-worker"))
        .env("PACER_CONCURRENCY", "lots")
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PACER_CONCURRENCY (--concurrency)") && err.contains("'lots'"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = Command::new(bin("pacer-worker"))
        .env("PACER_QUEUES", "generation,nope")
        .output()
        .expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown queue 'nope'"));
    // values that would make the process useless, or that used to be raised silently
    for (name, var, value) in [
        ("pacer-api", "PACER_MAX_BODY_BYTES", "0"),
        ("pacer-api", "PACER_SSE_KEEPALIVE_SECS", "0"),
        ("pacer-api", "PACER_EVENT_LOG_TTL_SECS", "59"),
        ("pacer-worker", "PACER_DB_MAX_CONNECTIONS", "0"),
        ("pacer-worker", "PACER_HEARTBEAT_SECS", "0"),
        ("pacer-worker", "PACER_MISSED_HEARTBEATS", "1"),
        ("pacer-worker", "PACER_QUEUE_HIGH_WATER", "8000"),
        ("pacer-worker", "PACER_POLL_INTERVAL_MS", "0"),
        ("pacer-worker", "PACER_RECONCILE_INTERVAL_SECS", "0"),
        ("pacer-worker", "PACER_RETRY_BASE_MS", "0"),
        ("pacer-worker", "PACER_JOB_TIMEOUTS", "generate_draft=0"),
    ] {
        let out = Command::new(bin(name))
            .env("PACER_JWT_SECRET", pacer_tests::SECRET)
            .env(var, value)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{var}={value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with(&format!("{name}: invalid value '{value}' for {var} (--")),
            "{var}={value}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // the subcommands' options have no variable: the flag alone
    for args in [
        &["token", "--ttl-secs", "0"][..],
        &["generate", "--org", ""],
        &["generate", "--coaches", "0"],
        &["generate", "--days", "0"],
    ] {
        let out = Command::new(bin("pacer-api"))
            .env("PACER_JWT_SECRET", pacer_tests::SECRET)
            .args(args)
            .output()
            .expect("runs");
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("for {}: ", args[1])),
            "{args:?}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

#[tokio::test]
async fn the_token_subcommand_mints_a_token_the_api_accepts() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    let out = Command::new(bin("pacer-api"))
        .env("PACER_JWT_SECRET", pacer_tests::SECRET)
        .args(["token", "--role", "athlete", "--sub", "usr_cli"])
        .output()?;
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    let (status, body) = app.get(&token, "/api/v1/jobs").await?;
    assert_eq!(status, 200, "{body}");
    Ok(())
}

/// RS256/ES256 tokens verified with a PEM public key (`PACER_JWT_PUBLIC_KEY_FILE`).
#[tokio::test]
async fn tokens_signed_with_an_ec_key_are_verified_with_its_pem_public_key() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("pacer-keys-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let private = dir.join("private.pem");
    let public = dir.join("public.pem");
    let ok = Command::new("openssl")
        .args([
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
        ])
        .arg(&private)
        .status()?
        .success()
        && Command::new("openssl")
            .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(dir.join("pk8.pem"))
            .status()?
            .success()
        && Command::new("openssl")
            .args(["ec", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()?
            .success();
    assert!(ok, "openssl generates the key pair");
    let mut app = TestApp::new().await?;
    app.set("PACER_JWT_PUBLIC_KEY_FILE", &public.to_string_lossy());
    app.start_api().await?;
    let claims = json!({"sub": "usr_ec", "role": "coach", "org_id": "org_demo", "exp": chrono::Utc::now().timestamp() + 600});
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(dir.join("pk8.pem"))?)?;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &key,
    )?;
    assert_eq!(app.get(&token, "/api/v1/jobs").await?.0, 200);
    // the HS256 secret still works beside it, and a token signed by another EC key does not
    assert_eq!(app.get(&app.coach(), "/api/v1/jobs").await?.0, 200);
    let other = dir.join("other.pem");
    Command::new("openssl")
        .args([
            "ecparam",
            "-genkey",
            "-name",
            "prime256v1",
            "-noout",
            "-out",
        ])
        .arg(&other)
        .status()?;
    Command::new("openssl")
        .args(["pkcs8", "-topk8", "-nocrypt", "-in"])
        .arg(&other)
        .arg("-out")
        .arg(dir.join("other8.pem"))
        .status()?;
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims,
        &jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(dir.join("other8.pem"))?)?,
    )?;
    assert_eq!(app.get(&forged, "/api/v1/jobs").await?.0, 401);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn a_coach_manages_athletes_of_its_own_organization_only() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    let coach = app.coach();
    let athlete =
        json!({"org_id": "org_demo", "role": "athlete", "display_name": "Alex", "groups": ["A"]});
    let (s, body) = app
        .put(&coach, "/api/v1/admin/users/usr_alex", &athlete)
        .await?;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["data"]["groups"], json!(["A"]));
    // idempotent: the same upsert again changes nothing
    let (_, again) = app
        .put(&coach, "/api/v1/admin/users/usr_alex", &athlete)
        .await?;
    assert_eq!(again["data"]["display_name"], "Alex");
    let mut admin_role = athlete.clone();
    admin_role["role"] = json!("admin");
    assert_eq!(
        app.put(&coach, "/api/v1/admin/users/usr_x", &admin_role)
            .await?
            .0,
        403
    );
    let mut other_org = athlete.clone();
    other_org["org_id"] = json!("org_other");
    assert_eq!(
        app.put(&coach, "/api/v1/admin/users/usr_y", &other_org)
            .await?
            .0,
        403
    );
    assert_eq!(
        app.put(
            &app.token("usr_a", "athlete", "org_demo"),
            "/api/v1/admin/users/usr_alex",
            &athlete
        )
        .await?
        .0,
        403
    );
    let mut bad_tz = athlete.clone();
    bad_tz["timezone"] = json!("Mars/Olympus");
    let (s, body) = app
        .put(&coach, "/api/v1/admin/users/usr_alex", &bad_tz)
        .await?;
    assert_eq!(
        (s, body["details"][0]["field"].as_str()),
        (400, Some("timezone"))
    );
    Ok(())
}

/// The synthetic data generator: two organizations from the same seed, and a re-run that adds
/// nothing.
#[tokio::test]
async fn the_generator_fills_two_organizations_from_one_seed_and_a_rerun_adds_nothing()
-> anyhow::Result<()> {
    let app = TestApp::new().await?;
    // the API's migrations: its binary migrates before it generates
    let generate = |org: &str| {
        Command::new(bin("pacer-api"))
            .env("PACER_JWT_SECRET", pacer_tests::SECRET)
            .env("DATABASE_URL", &app.database_url)
            .args([
                "generate",
                "--org",
                org,
                "--athletes",
                "2",
                "--coaches",
                "1",
                "--days",
                "5",
            ])
            .output()
    };
    let count = || async {
        sqlx::query_as::<_, (String, i64)>(
            "select u.org_id, count(*) from activities a join users u on u.id = a.athlete_id
              group by u.org_id order by u.org_id",
        )
        .fetch_all(&app.db)
        .await
    };

    for org in ["org_gen_a", "org_gen_b", "org_gen_a"] {
        let out = generate(org)?;
        assert!(
            out.status.success(),
            "{org}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let counts = count().await?;
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.iter().all(|(_, n)| *n > 0), "{counts:?}");
    assert_eq!(
        counts[0].1, counts[1].1,
        "same seed, same history: {counts:?}"
    );
    Ok(())
}

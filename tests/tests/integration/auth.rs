use pacer_tests::{SECRET, TestApp};
use serde_json::json;

fn input(org: &str) -> serde_json::Value {
    json!({"kind": "generate_draft", "input": {"weeks": 4, "level": "beginner", "org_id": org}})
}

fn sign(claims: serde_json::Value, secret: &str) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(secret.as_bytes());
    jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)
        .expect("HS256 signing does not fail")
}

#[tokio::test]
async fn tokens_roles_features_and_ownership_are_enforced() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start().await?;
    app.org("org_demo", &["coach_agent"]).await?;
    app.org("org_plain", &[]).await?;
    let now = chrono::Utc::now().timestamp();

    // 401: no token, bad signature, expired, garbage
    let (s, body) = app
        .request(
            reqwest::Method::POST,
            None,
            "/api/v1/jobs",
            Some(&input("org_demo")),
        )
        .await?;
    assert_eq!(
        (s, body["status"].as_str(), body["code"].as_str()),
        (401, Some("error"), Some("unauthorized"))
    );
    assert!(body["details"].is_array() && body["error"].is_string());
    let forged = sign(
        json!({"sub": "u", "role": "coach", "org_id": "org_demo", "exp": now + 600}),
        "not-the-secret",
    );
    assert_eq!(
        app.post(&forged, "/api/v1/jobs", &input("org_demo"))
            .await?
            .0,
        401
    );
    let expired = sign(
        json!({"sub": "u", "role": "coach", "org_id": "org_demo", "exp": now - 600}),
        SECRET,
    );
    let (s, body) = app
        .post(&expired, "/api/v1/jobs", &input("org_demo"))
        .await?;
    assert_eq!((s, body["code"].as_str()), (401, Some("token_expired")));
    assert_eq!(
        app.post("garbage", "/api/v1/jobs", &input("org_demo"))
            .await?
            .0,
        401
    );
    let bad_role = sign(
        json!({"sub": "u", "role": "superuser", "org_id": "org_demo", "exp": now + 600}),
        SECRET,
    );
    assert_eq!(
        app.post(&bad_role, "/api/v1/jobs", &input("org_demo"))
            .await?
            .0,
        401
    );

    // 403: an athlete on a coach job; an org without coach_agent; another org's plans
    let athlete = app.token("usr_ath", "athlete", "org_demo");
    let (s, body) = app
        .post(&athlete, "/api/v1/jobs", &input("org_demo"))
        .await?;
    assert_eq!((s, body["code"].as_str()), (403, Some("forbidden")));
    let plain_coach = app.token("usr_c2", "coach", "org_plain");
    assert_eq!(
        app.post(&plain_coach, "/api/v1/jobs", &input("org_plain"))
            .await?
            .0,
        403
    );
    assert_eq!(
        app.post(&plain_coach, "/api/v1/jobs", &input("org_demo"))
            .await?
            .0,
        403
    );
    // 404: unknown organization
    assert_eq!(
        app.post(&app.coach(), "/api/v1/jobs", &input("org_nowhere"))
            .await?
            .0,
        404
    );
    // admin API is admin only
    assert_eq!(
        app.put(
            &app.coach(),
            "/api/v1/admin/orgs/org_x",
            &json!({"name": "x"})
        )
        .await?
        .0,
        403
    );

    // another user's job does not exist for them; the admin sees it
    let id = app
        .submit(
            &app.coach(),
            "generate_draft",
            input("org_demo")["input"].clone(),
        )
        .await?;
    let other = app.token("usr_other", "coach", "org_demo");
    let (s, body) = app.get(&other, &format!("/api/v1/jobs/{id}")).await?;
    assert_eq!((s, body["code"].as_str()), (404, Some("not_found")));
    assert_eq!(
        app.delete(&other, &format!("/api/v1/jobs/{id}")).await?.0,
        404
    );
    assert_eq!(
        app.get(&other, &format!("/api/v1/jobs/{id}/events"))
            .await?
            .0,
        404
    );
    assert_eq!(
        app.get(&app.admin(), &format!("/api/v1/jobs/{id}"))
            .await?
            .0,
        200
    );

    // users are provisioned just in time from their claims
    let role: String = sqlx::query_scalar("select role from users where id = 'usr_ath'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(role, "athlete");
    Ok(())
}

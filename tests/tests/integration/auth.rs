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

/// The feature check is part of the submission's insert; a refusal is explained by reading the
/// organization afterwards. If the feature was turned on in between, the job is recorded on a
/// second try; if the organization keeps changing, the client is told to retry and nothing is
/// recorded. Triggers play the administrator who toggles the feature mid-request (a
/// statement-level trigger fires even when the insert records nothing).
#[tokio::test]
async fn a_feature_toggled_during_a_submission_is_answered_consistently() -> anyhow::Result<()> {
    let mut app = TestApp::new().await?;
    app.start_api().await?;
    app.org("org_late", &[]).await?;
    let coach = app.token("usr_late", "coach", "org_late");
    let jobs = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, i64>("select count(*) from jobs")
                .fetch_one(&db)
                .await
        }
    };
    for statement in [
        "create function turn_on() returns trigger language plpgsql as $$ begin
           update orgs set features = array_append(features, 'coach_agent')
            where id = 'org_late' and not ('coach_agent' = any(features));
           return null; end $$",
        "create trigger turn_on after insert on jobs for each statement execute function turn_on()",
    ] {
        sqlx::query(statement).execute(&app.db).await?;
    }
    // refused by the insert, the feature is on when the refusal is explained: recorded once
    let (s, body) = app.post(&coach, "/api/v1/jobs", &input("org_late")).await?;
    assert_eq!(s, 202, "{body}");
    assert_eq!(jobs(&app).await?, 1);
    let id = body["data"]["job_id"].as_str().unwrap_or_default();
    let (s, body) = app.get(&coach, &format!("/api/v1/jobs/{id}")).await?;
    assert_eq!(
        (s, body["data"]["state"].as_str()),
        (200, Some("queued")),
        "{body}"
    );

    // the insert refuses again while the organization qualifies whenever it is asked (a row
    // trigger that skips the insert stands for a feature turned off and on again): 409,
    // nothing recorded
    for statement in [
        "create function skip() returns trigger language plpgsql as $$ begin return null; end $$",
        "create trigger skip before insert on jobs for each row execute function skip()",
    ] {
        sqlx::query(statement).execute(&app.db).await?;
    }
    let (s, body) = app.post(&coach, "/api/v1/jobs", &input("org_late")).await?;
    assert_eq!(
        (s, body["status"].as_str(), body["code"].as_str()),
        (409, Some("error"), Some("organization_changed")),
        "{body}"
    );
    assert_eq!(jobs(&app).await?, 1);

    // with the feature off for good the answer is the plain refusal
    for statement in ["drop trigger skip on jobs", "drop trigger turn_on on jobs"] {
        sqlx::query(statement).execute(&app.db).await?;
    }
    app.org("org_late", &[]).await?;
    let (s, body) = app.post(&coach, "/api/v1/jobs", &input("org_late")).await?;
    assert_eq!(
        (s, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert_eq!(jobs(&app).await?, 1);
    Ok(())
}

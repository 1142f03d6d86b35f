//! JWT claims and verification. HS256 with a shared secret, or RS256/ES256 with a PEM public key.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Athlete,
    Coach,
    ClientAdmin,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Athlete => "athlete",
            Self::Coach => "coach",
            Self::ClientAdmin => "client_admin",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Athlete, Self::Coach, Self::ClientAdmin, Self::Admin]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub org_id: String,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// AI Training tenant; defaults to `org_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// A string or an array of strings, per RFC 7519.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<serde_json::Value>,
}

impl Claims {
    /// The `client_id` claim, or `org_id` when it is absent or empty (an empty claim names no
    /// client; it used to be taken as client "").
    pub fn client_id(&self) -> &str {
        self.client_id
            .as_deref()
            .filter(|c| !c.is_empty())
            .unwrap_or(&self.org_id)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the JWT public key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the JWT public key in {0} is neither an RSA nor an EC PEM key")]
    KeyFormat(String),
    #[error("set PACER_JWT_SECRET (HS256) or PACER_JWT_PUBLIC_KEY_FILE (RS256/ES256)")]
    NoKey,
    #[error("{0}")]
    Token(#[from] jsonwebtoken::errors::Error),
}

/// Verifies bearer tokens. Built once at start-up.
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<(DecodingKey, Validation)>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Verifier {
    /// `secret` enables HS256, `public_key_pem_path` RS256 or ES256 (by key type); both may be set.
    pub fn new(
        secret: Option<&str>,
        public_key_pem_path: Option<&str>,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, AuthError> {
        let validation = |alg: Algorithm| {
            let mut v = Validation::new(alg);
            let mut required = vec!["exp", "sub"];
            if issuer.is_some() {
                required.push("iss");
            }
            if audience.is_some() {
                required.push("aud");
            }
            v.set_required_spec_claims(&required);
            v.leeway = 5;
            match issuer {
                Some(iss) => v.set_issuer(&[iss]),
                None => v.iss = None,
            }
            match audience {
                Some(aud) => v.set_audience(&[aud]),
                None => v.validate_aud = false,
            }
            v
        };
        let mut keys = Vec::new();
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            keys.push((
                DecodingKey::from_secret(secret.as_bytes()),
                validation(Algorithm::HS256),
            ));
        }
        if let Some(path) = public_key_pem_path.filter(|s| !s.is_empty()) {
            let pem = std::fs::read(path).map_err(|source| AuthError::KeyFile {
                path: path.to_owned(),
                source,
            })?;
            if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
                keys.push((key, validation(Algorithm::RS256)));
            } else if let Ok(key) = DecodingKey::from_ec_pem(&pem) {
                keys.push((key, validation(Algorithm::ES256)));
            } else {
                return Err(AuthError::KeyFormat(path.to_owned()));
            }
        }
        if keys.is_empty() {
            return Err(AuthError::NoKey);
        }
        Ok(Self { keys })
    }

    /// The claims of a valid token. The token's own `alg` header selects the key.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)?;
        let mut last = None;
        for (key, validation) in &self.keys {
            if !validation.algorithms.contains(&header.alg) {
                continue;
            }
            match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map(AuthError::from).unwrap_or_else(|| {
            AuthError::Token(jsonwebtoken::errors::ErrorKind::InvalidAlgorithm.into())
        }))
    }
}

/// Mints an HS256 token (the `token` subcommand and tests).
pub fn mint_hs256(secret: &str, claims: &Claims) -> Result<String, AuthError> {
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            sub: "u1".into(),
            role: Role::Coach,
            org_id: "o1".into(),
            exp,
            name: None,
            email: None,
            client_id: None,
            iss: None,
            aud: None,
        }
    }

    fn now() -> u64 {
        chrono::Utc::now().timestamp() as u64
    }

    #[test]
    fn the_client_is_the_client_id_claim_or_else_the_org() {
        let mut c = claims(now() + 60);
        assert_eq!(c.client_id(), "o1");
        c.client_id = Some(String::new());
        assert_eq!(c.client_id(), "o1", "an empty claim names no client");
        c.client_id = Some("acme".into());
        assert_eq!(c.client_id(), "acme");
    }

    #[test]
    fn hs256_round_trip_and_rejections() {
        let v = Verifier::new(Some("s3cret"), None, None, None).unwrap();
        let token = mint_hs256("s3cret", &claims(now() + 60)).unwrap();
        assert_eq!(v.verify(&token).unwrap().sub, "u1");
        let forged = mint_hs256("other", &claims(now() + 60)).unwrap();
        assert!(v.verify(&forged).is_err());
        let expired = mint_hs256("s3cret", &claims(now() - 3600)).unwrap();
        assert!(v.verify(&expired).is_err());
        assert!(v.verify("not.a.jwt").is_err());
    }

    #[test]
    fn issuer_is_checked_when_configured() {
        let v = Verifier::new(Some("s"), None, Some("pacer"), None).unwrap();
        let mut c = claims(now() + 60);
        assert!(v.verify(&mint_hs256("s", &c).unwrap()).is_err());
        c.iss = Some("pacer".into());
        assert!(v.verify(&mint_hs256("s", &c).unwrap()).is_ok());
    }
}

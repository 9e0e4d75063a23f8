//! Access tokens: signed, self-describing, revocable.
//!
//! Form: `nacre1.<payload>.<mac>`, both parts base64url without padding;
//! the payload is JSON `{"sub":"<user>","gen":<generation>,"exp":<unix s>,"kid":<key id>}`
//! and the mac is HMAC-SHA256 over `nacre1.<payload>` with the signing key
//! `kid`. Clients never look inside (NACOS-AUTH.md §3): they keep
//! `accessToken` and `tokenTtl` from the login answer and send the token
//! back. A token verifies only while its key is kept, its expiry has not
//! passed and its user still has the generation it was issued under — so a
//! password change, a deletion or "log out everywhere" revokes it at once
//! (Nacos's tokens survive all three: alibaba/nacos#10095, #6948).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::accounts::{SigningKey, Tables};

const PREFIX: &str = "nacre1.";
/// Longest token looked at; anything longer is not one of ours.
const MAX_TOKEN_BYTES: usize = 1024;

type HmacSha256 = Hmac<Sha256>;

/// What a token says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// The user's generation when issued.
    #[serde(rename = "gen")]
    pub generation: u64,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// The signing key's id.
    pub kid: u32,
}

/// Why a token was refused; the texts are Nacos's (its console logs out on
/// exactly these, `console-ui/src/utils/request.js`).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TokenError {
    /// Malformed, signed with an unknown key, tampered with, or revoked.
    #[error("token invalid!")]
    Invalid,
    /// Past its expiry.
    #[error("token expired!")]
    Expired,
}

/// Signs `claims` with `key`.
pub fn sign(claims: &Claims, key: &SigningKey) -> String {
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
    let mac = mac_of(&key.secret, signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac))
}

fn mac_of(secret: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return Vec::new(),
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Checks `token` against the tables at `now` (unix seconds) and returns
/// its claims: signed by a kept key (compared in constant time), not
/// expired, and its user still exists with the same generation.
pub fn verify(token: &str, tables: &Tables, now: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Invalid);
    }
    let rest = token.strip_prefix(PREFIX).ok_or(TokenError::Invalid)?;
    let (payload, mac) = rest.split_once('.').ok_or(TokenError::Invalid)?;
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Invalid)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Invalid)?;
    let key = tables
        .verifying_key(claims.kid)
        .ok_or(TokenError::Invalid)?;
    let mac = URL_SAFE_NO_PAD
        .decode(mac)
        .map_err(|_| TokenError::Invalid)?;
    let mut expected = HmacSha256::new_from_slice(&key.secret).map_err(|_| TokenError::Invalid)?;
    expected.update(&token.as_bytes()[..PREFIX.len() + payload.len()]);
    // `verify_slice` compares in constant time.
    expected
        .verify_slice(&mac)
        .map_err(|_| TokenError::Invalid)?;
    if claims.exp < now {
        return Err(TokenError::Expired);
    }
    match tables.user(&claims.sub) {
        Some(user) if user.generation == claims.generation => Ok(claims),
        _ => Err(TokenError::Invalid),
    }
}

/// Whether claims verified earlier still hold at `now`: their key is still
/// kept, they have not expired, their user has the same generation. (What
/// [`verify`] checks after the signature.)
pub fn still_valid(claims: &Claims, tables: &Tables, now: u64) -> bool {
    tables.verifying_key(claims.kid).is_some()
        && claims.exp >= now
        && tables
            .user(&claims.sub)
            .is_some_and(|u| u.generation == claims.generation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::AccountChange;

    fn tables() -> Tables {
        let mut tables = Tables::default();
        tables.apply(AccountChange::FirstSigningKey(SigningKey {
            id: 7,
            secret: vec![1; 32],
        }));
        tables.apply(AccountChange::CreateUser {
            username: "ann".into(),
            password_hash: "h".into(),
        });
        tables
    }

    fn token_for(tables: &Tables, exp: u64) -> String {
        let generation = tables.user("ann").map_or(0, |u| u.generation);
        let key = tables.signing_key().cloned().expect("a key");
        sign(
            &Claims {
                sub: "ann".into(),
                generation,
                exp,
                kid: key.id,
            },
            &key,
        )
    }

    #[test]
    fn a_fresh_token_verifies_until_it_expires() {
        let tables = tables();
        let token = token_for(&tables, 1_000);
        assert_eq!(
            verify(&token, &tables, 999).map(|c| c.sub),
            Ok("ann".into())
        );
        assert_eq!(verify(&token, &tables, 1_001), Err(TokenError::Expired));
    }

    #[test]
    fn a_tampered_token_is_invalid() {
        let tables = tables();
        let token = token_for(&tables, 1_000);
        // Another user in the payload, same mac.
        let (_, mac) = token.rsplit_once('.').expect("three parts");
        let forged_claims = Claims {
            sub: "root".into(),
            generation: 1,
            exp: 1_000,
            kid: 7,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).expect("json"));
        let forged = format!("{PREFIX}{payload}.{mac}");
        assert_eq!(verify(&forged, &tables, 1), Err(TokenError::Invalid));
        // One flipped character of the mac.
        let mut bytes = token.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).expect("ascii");
        assert_eq!(verify(&flipped, &tables, 1), Err(TokenError::Invalid));
        for junk in ["", "nacre1.", "nacre1..", "a.b.c", &"x".repeat(5000)] {
            assert_eq!(
                verify(junk, &tables, 1),
                Err(TokenError::Invalid),
                "{junk:.20}"
            );
        }
    }

    #[test]
    fn a_password_change_revokes_the_token() {
        let mut tables = tables();
        let token = token_for(&tables, 1_000);
        tables.apply(AccountChange::SetPassword {
            username: "ann".into(),
            password_hash: "h2".into(),
        });
        assert_eq!(verify(&token, &tables, 1), Err(TokenError::Invalid));
    }

    #[test]
    fn a_token_of_a_dropped_key_is_invalid() {
        let mut tables = tables();
        let token = token_for(&tables, 1_000);
        for id in [8, 9] {
            tables.apply(AccountChange::AddSigningKey(SigningKey {
                id,
                secret: vec![id as u8; 32],
            }));
        }
        assert_eq!(verify(&token, &tables, 1), Err(TokenError::Invalid));
    }
}

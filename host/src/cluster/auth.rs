//! The cluster credential: a shared secret every internal request carries in
//! [`crate::wire::SECRET_HEADER`], compared in constant time. Nacos 1.x
//! trusted any request whose User-Agent said "Nacos-Server" (CVE-2021-29441);
//! here the only way into the internal API is the secret.

/// Whether `presented` is the cluster's `secret`. An empty configured secret
/// (an explicitly insecure cluster) accepts anything.
pub fn accepts(secret: &str, presented: Option<&[u8]>) -> bool {
    if secret.is_empty() {
        return true;
    }
    match presented {
        Some(presented) => constant_time_eq(secret.as_bytes(), presented),
        None => false,
    }
}

/// Compares without an early exit, so the time taken does not reveal how many
/// leading bytes matched. (The length of the secret is not hidden.)
fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut difference = u8::from(expected.len() != presented.len());
    for (i, byte) in expected.iter().enumerate() {
        let other = presented.get(i).copied().unwrap_or(!byte);
        difference |= byte ^ other;
    }
    difference == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_is_accepted() {
        assert!(accepts("s3cret", Some(b"s3cret")));
        assert!(!accepts("s3cret", Some(b"s3cre")));
        assert!(!accepts("s3cret", Some(b"s3cret!")));
        assert!(!accepts("s3cret", Some(b"S3cret")));
        assert!(!accepts("s3cret", Some(b"")));
        assert!(!accepts("s3cret", None));
        assert!(accepts("", None), "an insecure cluster accepts anything");
    }
}

//! References to binaries kept in the shared datastore.
//!
//! Messages never carry bytes (binary-less transport, as AEM's shared datastore
//! does): they carry a [`BlobRef`], which names a blob by the sha256 of its
//! content. Because the name *is* the content, a blob is never overwritten, any
//! number of workers may store the same output concurrently, and a reader can
//! verify what it fetched.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A lowercase hex sha256 digest, validated on construction so a reference read
/// from the wire can never smuggle a path (`../`) into a datastore key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

/// The reason a string is not a sha256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a sha256 digest (64 lowercase hex characters): {0:?}")]
pub struct InvalidDigest(pub String);

impl Sha256Hex {
    /// Wraps raw digest bytes.
    pub fn from_digest(bytes: &[u8; 32]) -> Self {
        Sha256Hex(hex::encode(bytes))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

text_schema!(Sha256Hex, "A sha256 digest, 64 lowercase hex digits.", r"^[0-9a-f]{64}$");

impl FromStr for Sha256Hex {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(Sha256Hex(s.to_owned()))
        } else {
            Err(InvalidDigest(s.chars().take(80).collect()))
        }
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = InvalidDigest;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Sha256Hex> for String {
    fn from(h: Sha256Hex) -> String {
        h.0
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A blob in the datastore, named by its content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BlobRef {
    pub sha256: Sha256Hex,
    /// Size in bytes; lets a reader refuse an oversized input before fetching it.
    pub size: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_rejects_anything_but_lowercase_hex() {
        assert!("a".repeat(64).parse::<Sha256Hex>().is_ok());
        assert!("A".repeat(64).parse::<Sha256Hex>().is_err());
        assert!("a".repeat(63).parse::<Sha256Hex>().is_err());
        assert!(format!("../{}", "a".repeat(61)).parse::<Sha256Hex>().is_err());
    }

    #[test]
    fn blob_ref_round_trips_through_json() {
        let r = BlobRef { sha256: "b".repeat(64).parse().unwrap(), size: 7 };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<BlobRef>(&json).unwrap(), r);
        assert!(serde_json::from_str::<BlobRef>(r#"{"sha256":"../etc","size":1}"#).is_err());
    }
}

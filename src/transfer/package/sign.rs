//! Detached Ed25519 signatures over packages and receipts, and fresh ids and keys.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::*;

/// A detached signature: `ed25519;key=<public key hex>;sig=<signature hex>` — the content of a
/// `.sig` file and of the `Kodomo-Signature` HTTP header.
#[derive(Debug, Clone, PartialEq)]
pub struct DetachedSignature {
    pub public_key: String,
    pub signature: String,
}

impl DetachedSignature {
    pub fn sign(key: &SigningKey, message: &[u8]) -> DetachedSignature {
        DetachedSignature {
            public_key: hex::encode(key.verifying_key().as_bytes()),
            signature: hex::encode(key.sign(message).to_bytes()),
        }
    }

    pub fn parse(text: &str) -> Result<DetachedSignature> {
        let bad = || {
            PackageError::new(
                "signature_malformed",
                "/signature",
                "expected ed25519;key=<64 hex digits>;sig=<128 hex digits>",
            )
        };
        let mut fields = text.trim().split(';');
        if fields.next() != Some("ed25519") {
            return Err(bad());
        }
        let key = fields
            .next()
            .and_then(|f| f.strip_prefix("key="))
            .ok_or_else(bad)?;
        let sig = fields
            .next()
            .and_then(|f| f.strip_prefix("sig="))
            .ok_or_else(bad)?;
        let hex_of = |s: &str, len| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        if fields.next().is_some() || !hex_of(key, 64) || !hex_of(sig, 128) {
            return Err(bad());
        }
        Ok(DetachedSignature {
            public_key: key.to_ascii_lowercase(),
            signature: sig.to_ascii_lowercase(),
        })
    }

    pub fn verify(&self, message: &[u8]) -> Result<()> {
        let invalid =
            |why: &str| PackageError::new("signature_invalid", "/signature", why.to_string());
        let key: [u8; 32] = hex::decode(&self.public_key)
            .ok()
            .and_then(|k| k.try_into().ok())
            .ok_or_else(|| invalid("the public key is not 32 bytes"))?;
        let signature: [u8; 64] = hex::decode(&self.signature)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| invalid("the signature is not 64 bytes"))?;
        let key =
            VerifyingKey::from_bytes(&key).map_err(|_| invalid("not an Ed25519 public key"))?;
        key.verify(message, &Signature::from_bytes(&signature))
            .map_err(|_| invalid("the signature does not match the signed content and key"))
    }
}

impl std::fmt::Display for DetachedSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ed25519;key={};sig={}", self.public_key, self.signature)
    }
}

/// Sign a package: the signature covers the header and the manifest (which covers the parts).
pub fn sign_package(key: &SigningKey, package: &Package) -> DetachedSignature {
    DetachedSignature::sign(key, &signed_info(&package.header, &package.manifest))
}

pub fn verify_package_signature(package: &Package, signature: &DetachedSignature) -> Result<()> {
    signature.verify(&signed_info(&package.header, &package.manifest))
}

/// A fresh random identifier in UUID form (version 4).
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("operating system randomness");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A new signing key from the operating system's randomness.
pub fn new_signing_key() -> SigningKey {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).expect("operating system randomness");
    SigningKey::from_bytes(&secret)
}

//! Connector credentials at rest: sealed (XChaCha20-Poly1305) with the data dir's key
//! before they reach the database, opened only in the host when a connector needs them.
//! Owns the sealing and nothing else: what is sealed, and where it is stored, belongs to
//! the callers. A sealed value is bound to its tenant and purpose, so a row copied to
//! another tenant does not open.

use std::fmt;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// The data dir's sealing key.
#[derive(Clone)]
pub struct Vault {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(***)")
    }
}

const NONCE: usize = 24;

impl Vault {
    pub fn new(key: &[u8; 32]) -> Vault {
        Vault {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Seal `plain`, bound to `context` (e.g. `acme/slack`): nonce ‖ ciphertext.
    pub fn seal(&self, context: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let nonce = rand::random::<[u8; NONCE]>();
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing the {context} credentials failed"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok(out)
    }

    /// Open what [`Vault::seal`] sealed with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        let fail = || {
            anyhow::anyhow!(
                "the stored {context} credentials cannot be opened with this data dir's \
                 vault.key (was the key replaced?); set them again"
            )
        };
        if sealed.len() < NONCE {
            return Err(fail());
        }
        let (nonce, body) = sealed.split_at(NONCE);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| fail())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_their_key_and_context() {
        let vault = Vault::new(&[7; 32]);
        let sealed = vault.seal("acme/slack", b"xoxb-secret").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"xoxb-secret"));
        assert_eq!(vault.open("acme/slack", &sealed).unwrap(), b"xoxb-secret");
        assert!(vault.open("globex/slack", &sealed).is_err());
        assert!(Vault::new(&[8; 32]).open("acme/slack", &sealed).is_err());
        assert!(vault.open("acme/slack", &sealed[..10]).is_err());
    }
}

//! The signing algorithms tessera offers (SPEC §6.6) and `TESSERA_SIGNING_ALGS`.

use std::fmt;
use std::str::FromStr;

/// A JWS algorithm tessera signs with. The names are the JOSE ones, exact case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the default, which every verifier speaks.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDsa];

    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    /// The `jsonwebtoken` algorithm that verifies it.
    pub fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
            SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
            SigningAlg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str() == s)
            .ok_or_else(|| format!("`{s}` is not one of RS256, ES256, EdDSA"))
    }
}

/// Parses `TESSERA_SIGNING_ALGS`: a comma-separated list of distinct algorithms, spaces
/// around commas ignored, that includes RS256 (OpenID Connect Discovery requires it).
pub fn parse_list(text: &str) -> Result<Vec<SigningAlg>, String> {
    let mut algs = Vec::new();
    for name in text.split(',').map(str::trim) {
        if name.is_empty() {
            return Err("an empty entry is not an algorithm".into());
        }
        let alg: SigningAlg = name.parse()?;
        if algs.contains(&alg) {
            return Err(format!("{alg} is listed twice"));
        }
        algs.push(alg);
    }
    if !algs.contains(&SigningAlg::Rs256) {
        return Err("the list must include RS256".into());
    }
    Ok(algs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse_list("RS256"), Ok(vec![SigningAlg::Rs256]));
        assert_eq!(
            parse_list(" ES256 , RS256,EdDSA "),
            Ok(vec![
                SigningAlg::Es256,
                SigningAlg::Rs256,
                SigningAlg::EdDsa
            ])
        );
        for bad in [
            "",
            " ",
            "ES256",
            "RS256,HS256",
            "RS256,none",
            "RS256,ES384",
            "RS256,RS256",
            "rs256",
            "RS256,,ES256",
            "RS256,eddsa",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} accepted");
        }
    }
}

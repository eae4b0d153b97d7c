//! Test certificates, generated with rcgen once per process: a CA, a
//! server certificate for `127.0.0.1` and `localhost` signed by it, and a
//! second CA that signed nothing (for "wrong CA" tests). Written as PEM
//! files into a temporary directory that lives as long as the process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// The directory of the generated files: `ca.crt`, `server.crt`,
/// `server.key`, `other-ca.crt`.
pub(crate) fn dir() -> Result<&'static Path, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("courier-tls-{}", std::process::id()));
        generate(&dir).map_err(|e| {
            format!(
                "cannot generate test certificates in {}: {e}",
                dir.display()
            )
        })?;
        Ok(dir)
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(Clone::clone)
}

/// A self-signed CA named `name`.
fn authority(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate()?)
}

fn generate(dir: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let ca = authority("courier test CA")?;
    let other = authority("courier other test CA (signs nothing)")?;
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "courier test server");
    let key = KeyPair::generate()?;
    let server = params.signed_by(&key, &ca)?;
    std::fs::create_dir_all(dir)?;
    for (name, pem) in [
        ("ca.crt", ca.pem()),
        ("other-ca.crt", other.pem()),
        ("server.crt", server.pem()),
        ("server.key", key.serialize_pem()),
    ] {
        std::fs::write(dir.join(name), pem)?;
    }
    Ok(())
}

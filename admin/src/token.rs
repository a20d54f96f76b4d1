//! The admin bearer token: read from `token_file`, created (random, mode 0600) on first start
//! if missing, compared in constant time.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: the token file is empty")]
    Empty { path: PathBuf },
    #[error("{path}: readable by group or others (mode {mode:o}); run chmod 600 on it")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("no random bytes for a new token: {0}")]
    Random(String),
}

/// The admin API's shared secret.
pub struct AdminToken {
    secret: Vec<u8>,
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

impl AdminToken {
    /// Reads the token file, or creates it with a new random token (64 hex digits, mode 0600)
    /// if it does not exist. Returns the token and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(AdminToken, bool), TokenError> {
        let io = |source| TokenError::Io {
            path: path.to_owned(),
            source,
        };
        match fs::read(path) {
            Ok(bytes) => {
                let mode = fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(TokenError::TooOpen {
                        path: path.to_owned(),
                        mode,
                    });
                }
                let secret = bytes.trim_ascii().to_vec();
                if secret.is_empty() {
                    return Err(TokenError::Empty {
                        path: path.to_owned(),
                    });
                }
                Ok((AdminToken { secret }, false))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut raw = [0u8; 32];
                getrandom::fill(&mut raw).map_err(|e| TokenError::Random(e.to_string()))?;
                let secret: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir).map_err(io)?;
                }
                // create_new: never clobber a token another process just wrote.
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                f.write_all(secret.as_bytes())
                    .and_then(|()| f.write_all(b"\n"))
                    .map_err(io)?;
                f.sync_all().map_err(io)?;
                Ok((
                    AdminToken {
                        secret: secret.into_bytes(),
                    },
                    true,
                ))
            }
            Err(e) => Err(io(e)),
        }
    }

    pub fn from_secret(secret: &str) -> AdminToken {
        AdminToken {
            secret: secret.trim().as_bytes().to_vec(),
        }
    }

    /// Checks an `Authorization` header value (`Bearer <token>`) in constant time.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let Some(given) = strip_bearer(value) else {
            return false;
        };
        // ct_eq on slices of different lengths returns false without comparing contents.
        bool::from(given.trim_ascii().ct_eq(&self.secret))
    }
}

fn strip_bearer(v: &[u8]) -> Option<&[u8]> {
    let v = v.trim_ascii();
    (v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer ")).then(|| &v[7..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_random_token_once_and_reads_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/admin.token");
        let (t1, created) = AdminToken::load_or_create(&path).expect("create");
        assert!(created);
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text.trim().len(), 64);
        let (t2, created) = AdminToken::load_or_create(&path).expect("load");
        assert!(!created);
        let header = format!("Bearer {}", text.trim());
        assert!(t1.accepts(Some(header.as_bytes())));
        assert!(t2.accepts(Some(header.as_bytes())));
    }

    #[test]
    fn refuses_wrong_missing_or_malformed_credentials() {
        let t = AdminToken::from_secret("s3cret");
        assert!(t.accepts(Some(b"Bearer s3cret")));
        assert!(t.accepts(Some(b"bearer s3cret ")));
        for bad in [
            &b"Bearer s3cre"[..],
            b"Bearer s3cret2",
            b"Basic s3cret",
            b"s3cret",
            b"Bearer ",
            b"",
        ] {
            assert!(!t.accepts(Some(bad)), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(!t.accepts(None));
    }

    #[test]
    fn refuses_a_token_file_others_can_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("admin.token");
        fs::write(&path, "abc\n").expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            AdminToken::load_or_create(&path),
            Err(TokenError::TooOpen { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        fs::write(&path, "  \n").expect("write");
        assert!(matches!(
            AdminToken::load_or_create(&path),
            Err(TokenError::Empty { .. })
        ));
    }
}

//! The token file (`AUTH_TOKENS_FILE`): read with its checks, and read again on SIGHUP, so
//! tokens are added and revoked without a restart. A file that group or others may write is
//! refused (anyone who can write it can let themselves in); a re-read that fails keeps the
//! tokens in force and says why.

use crate::auth::Tokens;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use tokio_util::sync::CancellationToken;

/// The tokens in force, and the file they come from (none for tests and tools).
#[derive(Debug)]
pub struct TokenStore {
    current: RwLock<Arc<Tokens>>,
    file: Option<PathBuf>,
}

impl TokenStore {
    /// Tokens that never change.
    pub fn fixed(tokens: Tokens) -> Arc<Self> {
        Arc::new(Self { current: RwLock::new(Arc::new(tokens)), file: None })
    }

    /// The tokens in `path`, re-read by [`TokenStore::reload_on_hangup`].
    pub fn from_file(path: &Path) -> Result<Arc<Self>, String> {
        let tokens = read(path)?;
        Ok(Arc::new(Self { current: RwLock::new(Arc::new(tokens)), file: Some(path.to_owned()) }))
    }

    /// The tokens in force now.
    pub fn get(&self) -> Arc<Tokens> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the file again; the tokens in force change only if it is good.
    pub fn reload(&self) -> Result<(), String> {
        let Some(path) = &self.file else { return Ok(()) };
        let tokens = read(path)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(tokens);
        Ok(())
    }

    /// Re-reads the file on every SIGHUP until `shutdown`.
    pub async fn reload_on_hangup(self: Arc<Self>, shutdown: CancellationToken) {
        if self.file.is_none() {
            return shutdown.cancelled().await;
        }
        let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGHUP: the token file is read at start only");
                return shutdown.cancelled().await;
            }
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = hangups.recv() => match self.reload() {
                    Ok(()) => tracing::info!("token file re-read on SIGHUP"),
                    Err(error) => tracing::error!(%error, "token file not re-read; the tokens in force stay"),
                },
            }
        }
    }
}

/// The tokens in the file at `path`: it must be readable, writable by its owner only, and hold
/// at least one good token line.
pub fn read(path: &Path) -> Result<Tokens, String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(format!(
            "is writable by its group or others (mode {:o}): anyone who can write it could add a token; chmod go-w it",
            mode & 0o777
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot be read: {e}"))?;
    let tokens = Tokens::parse(&text).map_err(|e| e.to_string())?;
    if tokens.is_empty() {
        return Err("holds no token: nobody could call the service".into());
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{digest, scope};
    use std::os::unix::fs::PermissionsExt;

    fn file(name: &str, text: &str, mode: u32) -> PathBuf {
        let path = std::env::temp_dir().join(format!("tokens-{}-{name}", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    #[test]
    fn a_file_others_may_write_is_refused() {
        let line = format!("ops {} *\n", digest("secret"));
        for mode in [0o622, 0o646, 0o666] {
            let path = file("open", &line, mode);
            assert!(read(&path).unwrap_err().contains("writable by its group or others"), "{mode:o}");
            std::fs::remove_file(path).unwrap();
        }
        let path = file("private", &line, 0o600);
        assert!(read(&path).is_ok());
        std::fs::remove_file(path).unwrap();
        let path = file("empty", "# nothing\n", 0o600);
        assert!(read(&path).unwrap_err().contains("holds no token"));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_reload_takes_a_good_file_and_keeps_the_tokens_for_a_bad_one() {
        let path = file("reload", &format!("old {} *\n", digest("old-secret")), 0o600);
        let store = TokenStore::from_file(&path).unwrap();
        let may = |store: &TokenStore, token: &str| {
            let policy = crate::auth::Policy { api: "a.B", methods: &[("C", &[scope::ALL])], also: &[] };
            let header = format!("Bearer {token}");
            store.get().authorize(&policy, "/a.B/C", Some(header.as_bytes())).is_ok()
        };
        assert!(may(&store, "old-secret"));
        std::fs::write(&path, format!("new {} *\n", digest("new-secret"))).unwrap();
        store.reload().unwrap();
        assert!(may(&store, "new-secret") && !may(&store, "old-secret"), "revoked without a restart");
        std::fs::write(&path, "new not-a-digest *\n").unwrap();
        assert!(store.reload().is_err());
        assert!(may(&store, "new-secret"), "a bad file changes nothing");
        std::fs::remove_file(path).unwrap();
    }
}

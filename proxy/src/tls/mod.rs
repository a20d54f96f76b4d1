//! TLS in the data plane: what `https://` listeners serve ([`server`]: a rustls server config
//! per certificate, policy and truststore, picked by the handshake's server name) and how
//! `https://` backends are reached ([`client`]). The byte stream over an established
//! connection is [`crate::stream::TlsStream`].
//!
//! Both are compiled into a [`crate::snapshot::Snapshot`] off the workers (certificate
//! parsing, system root loading), so a worker only runs handshakes.

pub mod client;
pub mod server;
mod sessions;

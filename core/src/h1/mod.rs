//! HTTP/1.1, split by job (as hyper does): nothing here touches a socket.
//!
//! - [`head`]: byte spans and header classification shared by requests and responses;
//! - [`request`]: finding and strictly parsing a request head (smuggling-safe);
//! - [`response`]: parsing an upstream's response head and deciding its body framing;
//! - [`chunked`]: a streaming chunked-body decoder that validates every byte;
//! - [`encode`]: writing heads and chunk framing.
//!
//! Hot path: no allocation per message (header spans live in vectors reused per connection),
//! no logging above debug.

pub mod body;
pub mod chunked;
pub mod encode;
pub mod head;
pub mod request;
pub mod response;
#[cfg(test)]
mod tests;

pub use head::{Header, HeaderKind, Span};

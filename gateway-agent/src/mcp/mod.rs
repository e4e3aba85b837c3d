//! Understanding MCP traffic: JSON-RPC messages, SSE framing, and the filter applied to
//! everything a server sends back to a caller.

pub mod filter;
pub mod headers;
pub mod json_frames;
pub mod jsonrpc;
pub mod sse;

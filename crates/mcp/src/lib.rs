//! Countersign for MCP: an enforcement proxy in front of MCP servers (stdio and streamable HTTP) and a
//! PreToolUse hook for coding agents. Every tool call becomes a step-up at a Countersign gateway; only what the
//! policy allowed or humans approved, with exactly the approved arguments, reaches the server.

pub mod cli;
pub mod config;
pub mod draft;
pub mod enforce;
pub mod gateway;
pub mod guard;
pub mod hook;
pub mod http;
pub mod lines;
pub mod messages;
pub mod relay;
pub mod sse;
pub mod stdio;

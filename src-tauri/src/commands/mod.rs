//! Tauri commands, one module per domain; each is a thin translation onto the console core.

pub mod app;
pub mod decisions;
pub mod eps;
pub mod history;
pub mod keys;
pub mod requests;
pub mod settings;

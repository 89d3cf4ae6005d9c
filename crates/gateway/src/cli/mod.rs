//! The `countersign-gateway` command line: its arguments, what each command does, what it prints.

pub mod args;
pub mod dispatch;
mod output;

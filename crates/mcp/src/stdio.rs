//! `countersign-mcp stdio`: the proxy as an MCP client's stdio server, with the real server as its child.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::config::Loaded;
use crate::guard::Guard;
use crate::lines::{self, Line, MAX_LINE};
use crate::relay::Relay;

/// How long the proxy waits for the gateway to withdraw held calls, and for the server to exit, at the end.
const GRACE: Duration = Duration::from_secs(5);

/// The server's environment: the proxy's, less every Countersign secret (a server can read and return its env).
fn server_command(loaded: &Loaded, command: &[String]) -> anyhow::Result<Command> {
    let (program, args) = command.split_first().context("no server command after --")?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
    let g = &loaded.config.gateway;
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let named = [&g.token_env, &g.system_token_env].iter().any(|v| v.as_deref() == Some(name.as_str()));
        if name.starts_with("COUNTERSIGN_") || named {
            cmd.env_remove(&name);
        }
    }
    Ok(cmd)
}

/// Run until the client closes its side; the exit code is the server's when it ends first.
pub async fn run(loaded: Loaded, command: Vec<String>) -> anyhow::Result<i32> {
    let guard = Guard::new(loaded.clone())?;
    let mut child = server_command(&loaded, &command)?.spawn().with_context(|| {
        format!("cannot start the server {:?}", command.first().map(String::as_str).unwrap_or(""))
    })?;
    let child_in = child.stdin.take().context("server stdin")?;
    let child_out = BufReader::new(child.stdout.take().context("server stdout")?);
    let (to_server, server_rx) = unbounded_channel();
    let (to_client, client_rx) = unbounded_channel();
    let relay = Relay::new(guard, to_server, to_client);

    let writer_client = tokio::spawn(write_all(client_rx, tokio::io::stdout()));
    let writer_server = tokio::spawn(write_all(server_rx, child_in));
    let from_server = {
        let relay = Arc::clone(&relay);
        tokio::spawn(read_all(child_out, move |m| relay.from_server(m)))
    };
    let from_client = {
        let relay = Arc::clone(&relay);
        read_all(BufReader::new(tokio::io::stdin()), move |m| relay.from_client(m))
    };
    tokio::select! {
        r = from_client => {
            if let Err(e) = r { tracing::warn!(error = %e, "reading the client failed"); }
            relay.close(GRACE).await;
        }
        _ = from_server => {
            tracing::warn!("the server closed its output");
            relay.close(GRACE).await;
        }
    }
    // Closing the relay's senders ends the writers; the server sees its stdin close and exits.
    drop(relay);
    writer_server.abort();
    let status = match tokio::time::timeout(GRACE, child.wait()).await {
        Ok(s) => s.ok(),
        Err(_) => {
            let _ = child.kill().await;
            None
        }
    };
    let _ = tokio::time::timeout(GRACE, writer_client).await;
    Ok(status.and_then(|s| s.code()).unwrap_or(0))
}

async fn read_all<R: AsyncBufRead + Unpin>(mut r: R, mut each: impl FnMut(Vec<u8>)) -> std::io::Result<()> {
    while let Some(line) = lines::next(&mut r, MAX_LINE).await? {
        match line {
            Line::Message(m) => each(m),
            Line::TooLong => tracing::warn!(max = MAX_LINE, "skipped a message longer than the limit"),
        }
    }
    Ok(())
}

async fn write_all<W: AsyncWrite + Unpin>(
    mut rx: UnboundedReceiver<Vec<u8>>,
    mut w: W,
) -> std::io::Result<()> {
    while let Some(mut m) = rx.recv().await {
        m.push(b'\n');
        w.write_all(&m).await?;
        w.flush().await?;
    }
    w.shutdown().await
}

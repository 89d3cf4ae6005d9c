//! Newline-delimited JSON-RPC framing for stdio: one message per line, bounded, a bad line never ends the stream.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// Longest line accepted (16 MiB); a longer one is skipped.
pub const MAX_LINE: usize = 16 << 20;

/// One framed line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A message's bytes, without the line ending or a byte-order mark.
    Message(Vec<u8>),
    /// A line longer than the limit, skipped.
    TooLong,
}

/// Read the next non-blank line; `None` at the end of the stream.
pub async fn next<R: AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Option<Line>> {
    loop {
        let mut buf = Vec::new();
        let n = (&mut *r).take(max as u64 + 1).read_until(b'\n', &mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if buf.last() != Some(&b'\n') && buf.len() > max {
            // Skip the rest of the over-long line.
            loop {
                let mut rest = Vec::new();
                let n = (&mut *r).take(64 << 10).read_until(b'\n', &mut rest).await?;
                if n == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
            return Ok(Some(Line::TooLong));
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let body = buf.strip_prefix(b"\xEF\xBB\xBF".as_slice()).map(<[u8]>::to_vec).unwrap_or(buf);
        if body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        return Ok(Some(Line::Message(body)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_framed_and_bad_ones_skipped() {
        let input = b"{\"a\":1}\r\n\n  \n\xEF\xBB\xBF{\"b\":2}\n0123456789abcdef\n{\"c\":3}";
        let mut r = tokio::io::BufReader::new(&input[..]);
        let mut got = Vec::new();
        while let Some(l) = next(&mut r, 10).await.unwrap() {
            got.push(l);
        }
        assert_eq!(
            got,
            vec![
                Line::Message(b"{\"a\":1}".to_vec()),
                Line::Message(b"{\"b\":2}".to_vec()),
                Line::TooLong,
                Line::Message(b"{\"c\":3}".to_vec()),
            ]
        );
    }
}

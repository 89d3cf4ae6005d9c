//! Secrets in memory: a wrapper that never prints, never serializes, and wipes itself on drop.

use zeroize::Zeroize;

/// A secret value. `Debug` prints `<redacted>`; there is no `Display`, `Serialize` or `Clone`;
/// the contents are zeroized when it is dropped.
pub struct Sensitive<T: Zeroize>(T);

impl<T: Zeroize> Sensitive<T> {
    /// Wrap a secret.
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// Borrow the secret, for the shortest time possible.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> Drop for Sensitive<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> std::fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = Sensitive::new(String::from("hunter2"));
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
    }
}
